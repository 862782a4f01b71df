"""Protocol decode of the golden request frames captured from real clients (tests/golden):
header + body, per frame, through pyk.protocol's compiled codecs vs kafka-python's protocol
classes (generated from Kafka's JSON message specs: the Python library doing the same job)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from pyk import protocol

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
FRAMES = {e["file"][:-4]: (e["api_key"], e["version"], (GOLDEN / e["file"]).read_bytes()) for e in MANIFEST}

# api key -> kafka-python request class (module, name), for the APIs the golden frames cover
KAFKA_PYTHON = {
    0: ("kafka.protocol.producer", "ProduceRequest"), 1: ("kafka.protocol.consumer", "FetchRequest"),
    2: ("kafka.protocol.consumer", "ListOffsetsRequest"), 3: ("kafka.protocol.metadata", "MetadataRequest"),
    10: ("kafka.protocol.broker_version_data", "FindCoordinatorRequest"),
    18: ("kafka.protocol.metadata", "ApiVersionsRequest"), 22: ("kafka.protocol.producer", "InitProducerIdRequest"),
}  # fmt: skip


def _pyk_decode(raw: bytes) -> dict:
    view = memoryview(bytearray(raw))  # the broker decodes from a writable receive buffer
    header, offset = protocol.decode_request_header(view)
    return protocol.decode_request(header.api_key, header.api_version, view, offset)


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_pyk(benchmark, name):
    api_key, version, raw = FRAMES[name]
    benchmark.group = f"decode {name}"
    benchmark.extra_info["bytes"] = len(raw)
    benchmark(_pyk_decode, raw)


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_kafka_python(benchmark, name):
    api_key, version, raw = FRAMES[name]
    where = KAFKA_PYTHON.get(api_key)
    if where is None:
        pytest.skip(f"no kafka-python class listed for api key {api_key}")
    try:
        cls = getattr(importlib.import_module(where[0]), where[1])
        cls.decode(raw, version=version, header=True)
    except Exception as exc:  # noqa: BLE001 - kafka-python's layout differs between releases
        pytest.skip(f"kafka-python cannot decode {name}: {exc}")
    benchmark.group = f"decode {name}"
    benchmark(cls.decode, raw, version=version, header=True)
