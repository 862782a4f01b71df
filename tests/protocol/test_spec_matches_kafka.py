"""Our hand-written specs agree with Apache Kafka's public JSON message definitions.

The definitions are read from kafka-python's copy (kafka/protocol/schemas/resources, a test
dependency) or from a Kafka checkout's clients/src/main/resources/common/message named by
PYK_KAFKA_MESSAGE_DIR.  For every version both sides define, each field must agree on
presence, type, nullability and tag.  Defaults are not compared: pyk deliberately defaults
nullable error messages to null (see messages/topics.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from pyk import protocol
from pyk.protocol.apis import SPECS
from pyk.protocol.spec import Field, Versions


def _message_dir() -> Path | None:
    env = os.environ.get("PYK_KAFKA_MESSAGE_DIR")
    if env:
        return Path(env)
    # Located without importing kafka-python, which would parse every definition itself.
    spec = importlib.util.find_spec("kafka")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "protocol" / "schemas" / "resources"
    return path if path.is_dir() else None


MESSAGE_DIR = _message_dir()
pytestmark = pytest.mark.skipif(MESSAGE_DIR is None, reason="no Kafka JSON message definitions available")


def _load(name: str) -> dict:
    assert MESSAGE_DIR is not None
    text = (MESSAGE_DIR / f"{name}.json").read_text()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _compare(ours: tuple[Field, ...], theirs: list[dict], version: int, path: str) -> None:
    mine = {f.name: f for f in ours if version in f.versions}
    kafka = {_snake(f["name"]): f for f in theirs if version in Versions.parse(f["versions"])}
    assert sorted(mine) == sorted(kafka), f"{path} v{version}: fields differ"
    for name, k in kafka.items():
        f = mine[name]
        where = f"{path}.{name} v{version}"
        assert f.type == k["type"], where
        assert (version in f.nullable) == (version in Versions.parse(k.get("nullableVersions"))), where
        tagged = version in Versions.parse(k.get("taggedVersions"))
        assert (version in f.tagged) == tagged, where
        if tagged:
            assert f.tag == k["tag"], where
        if "fields" in k:
            _compare(f.fields, k["fields"], version, f"{path}.{name}")


def _common(definition: dict, fields: list[dict]) -> list[dict]:
    """Inline commonStructs references, so nested fields can be compared."""
    structs = {s["name"]: s["fields"] for s in definition.get("commonStructs", [])}
    out = []
    for f in fields:
        f = dict(f)
        elem = f["type"][2:] if f["type"].startswith("[]") else f["type"]
        if "fields" not in f and elem in structs:
            f["fields"] = structs[elem]
        if "fields" in f:
            f["fields"] = _common(definition, f["fields"])
        out.append(f)
    return out


@pytest.mark.parametrize("key", sorted(SPECS), ids=lambda k: k.name)
def test_spec_matches_kafka_json(key):
    for message in SPECS[key]:
        if not (MESSAGE_DIR / f"{message.name}.json").exists():
            # kafka-python's copy predates KIP-848 (no ConsumerGroupHeartbeat); a Kafka
            # checkout named by PYK_KAFKA_MESSAGE_DIR has it.
            pytest.skip(f"{message.name}.json is not among the definitions in {MESSAGE_DIR}")
        definition = _load(message.name)
        assert definition["apiKey"] == message.api_key
        assert Versions.parse(definition["flexibleVersions"]) == message.flexible
        theirs = Versions.parse(definition["validVersions"])
        low, high = protocol.SUPPORTED[key]
        shared = [v for v in range(low, high + 1) if v in theirs]
        assert shared, f"{message.name}: no version in common with Kafka's {theirs}"
        for version in shared:
            _compare(message.fields, _common(definition, definition["fields"]), version, message.name)
