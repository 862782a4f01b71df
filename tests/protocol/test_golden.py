"""Request frames captured from real clients (tests/golden, see capture.py) decode, and
re-encode byte for byte; also a few facts about what those clients send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyk import protocol
from pyk.protocol import ApiKey

GOLDEN = Path(__file__).parent.parent / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: f"{e['client']}-{e['file'][:-4]}")
def test_golden_request_decodes_and_reencodes_byte_for_byte(entry):
    raw = (GOLDEN / entry["file"]).read_bytes()
    view = memoryview(bytearray(raw))
    header, offset = protocol.decode_request_header(view)
    assert (header.api_key, header.api_version) == (entry["api_key"], entry["version"])
    body = protocol.decode_request(header.api_key, header.api_version, view, offset)
    again = protocol.encode_request(header.api_key, header.api_version, header.correlation_id, header.client_id, body)
    assert again[4:] == raw


def _decoded(file: str) -> tuple[protocol.RequestHeader, dict]:
    view = memoryview(bytearray((GOLDEN / file).read_bytes()))
    header, offset = protocol.decode_request_header(view)
    return header, protocol.decode_request(header.api_key, header.api_version, view, offset)


def test_golden_contents_look_like_their_clients():
    by_client = {}
    for entry in MANIFEST:
        by_client.setdefault(entry["client"], []).append(entry)
    assert set(by_client) == {"kcat", "confluent-kafka", "kafka-python", "aiokafka"}
    for client, entries in by_client.items():
        assert all(e["client_version"] for e in entries)
        produce = [e for e in entries if e["api_key"] == ApiKey.PRODUCE]
        assert produce, f"{client} sent no produce request"
        header, body = _decoded(produce[0]["file"])
        assert header.client_id.startswith("golden-")
        [topic] = body["topic_data"]
        [partition] = topic["partition_data"]
        assert topic["name"] == "golden"
        records = partition["records"]
        # a v2 record batch: magic byte 2 at offset 16, batch length matching the bytes
        assert records[16] == 2
        assert int.from_bytes(records[8:12], "big") == len(records) - 12
