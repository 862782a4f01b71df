"""ConsumerGroupHeartbeat (KIP-848) byte layouts, built by hand from Kafka's JSON definitions.

The generic round-trip tests cover every version; these pin the layout itself, in particular
the response's nullable `assignment` struct (an int8 marker: -1 null, 1 present), the one
nullable struct among pyk's specs.
"""

from __future__ import annotations

import struct
import uuid

from pyk import protocol
from pyk.protocol.apis import ApiKey

KEY = ApiKey.CONSUMER_GROUP_HEARTBEAT
TOPIC = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


def _cs(s: str | None) -> bytes:  # compact (nullable) string
    if s is None:
        return b"\x00"
    raw = s.encode()
    return bytes([len(raw) + 1]) + raw


def _request_body(version: int) -> bytes:
    out = _cs("g") + _cs("m-1") + struct.pack(">i", 0) + _cs(None) + _cs("rack") + struct.pack(">i", 30000)
    out += b"\x02" + _cs("t")  # subscribed_topic_names: ["t"]
    if version >= 1:
        out += _cs(None)  # subscribed_topic_regex
    out += _cs("uniform")  # server_assignor
    out += b"\x02" + TOPIC.bytes + b"\x03" + struct.pack(">ii", 0, 2) + b"\x00"  # topic_partitions
    return out + b"\x00"  # no tagged fields


def test_request_layout_v0_and_v1():
    for version in (0, 1):
        frame = protocol.encode_request(KEY, version, 5, "c", {
            "group_id": "g", "member_id": "m-1", "member_epoch": 0, "rack_id": "rack",
            "rebalance_timeout_ms": 30000, "subscribed_topic_names": ["t"], "server_assignor": "uniform",
            "topic_partitions": [{"topic_id": TOPIC, "partitions": [0, 2]}]})
        view = memoryview(bytearray(frame))[4:]
        header, offset = protocol.decode_request_header(view)
        assert bytes(view[offset:]) == _request_body(version)
        decoded = protocol.decode_request(KEY, version, view, offset)
        assert decoded["instance_id"] is None and decoded["subscribed_topic_names"] == ["t"]
        assert decoded["topic_partitions"] == [{"topic_id": TOPIC, "partitions": [0, 2]}]


def test_response_assignment_null_and_present():
    head = struct.pack(">ih", 0, 0) + _cs(None) + _cs("m-1") + struct.pack(">ii", 3, 5000)
    null = b"".join(protocol.encode_response(KEY, 0, 9, {"member_id": "m-1", "member_epoch": 3,
                                                         "heartbeat_interval_ms": 5000}))
    # frame: length, correlation id, header tagged fields, body
    assert null[9:] == head + b"\xff" + b"\x00"
    _, decoded = protocol.decode_response(KEY, 0, null[4:])
    assert decoded["assignment"] is None
    body = {"member_id": "m-1", "member_epoch": 3, "heartbeat_interval_ms": 5000,
            "assignment": {"topic_partitions": [{"topic_id": TOPIC, "partitions": [1]}]}}
    present = b"".join(protocol.encode_response(KEY, 1, 9, body))
    assert present[9:] == (head + b"\x01" + b"\x02" + TOPIC.bytes + b"\x02" + struct.pack(">i", 1) + b"\x00"
                           + b"\x00" + b"\x00")
    _, decoded = protocol.decode_response(KEY, 1, present[4:])
    assert decoded["assignment"] == {"topic_partitions": [{"topic_id": TOPIC, "partitions": [1]}]}
