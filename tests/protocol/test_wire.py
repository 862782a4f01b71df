"""Headers, hand-checked byte vectors, tagged-field rules, strict encoding and sendable records."""

from __future__ import annotations

import pytest

from pyk import protocol
from pyk.errors import ErrorCode, KafkaError, ProtocolViolation
from pyk.protocol import ApiKey
from pyk.protocol.compile import UnsupportedFieldVersion
from pyk.protocol.header import request_header_version, response_header_version


def _view(raw: bytes) -> memoryview:
    return memoryview(bytearray(raw))


def _response_bytes(key, version, correlation_id, body) -> bytes:
    return b"".join(protocol.encode_response(key, version, correlation_id, body))


# ---------------------------------------------------------------------------------- headers


def test_header_versions():
    assert request_header_version(ApiKey.API_VERSIONS, 2) == 1
    assert request_header_version(ApiKey.API_VERSIONS, 3) == 2
    assert request_header_version(ApiKey.CONTROLLED_SHUTDOWN, 0) == 0
    assert request_header_version(ApiKey.DESCRIBE_CLUSTER, 0) == 2
    assert request_header_version(ApiKey.SASL_HANDSHAKE, 1) == 1
    assert response_header_version(ApiKey.API_VERSIONS, 3) == 0  # KIP-511
    assert response_header_version(ApiKey.METADATA, 8) == 0
    assert response_header_version(ApiKey.METADATA, 9) == 1


def test_unknown_api_key_is_a_violation():
    with pytest.raises(ProtocolViolation, match="unknown api key 999"):
        protocol.decode_request_header(_view(b"\x03\xe7\x00\x00\x00\x00\x00\x01\xff\xff"))
    assert not protocol.is_known(999)
    assert protocol.is_known(ApiKey.LEADER_AND_ISR) and ApiKey.LEADER_AND_ISR not in protocol.SUPPORTED


def test_known_key_at_unsupported_version_still_parses():
    # Fetch v2 (below our range, header v1) and Produce v13 (above it, flexible header v2).
    header, offset = protocol.decode_request_header(_view(b"\x00\x01\x00\x02\x00\x00\x00\x05\x00\x01c"))
    assert header == (ApiKey.FETCH, 2, 5, "c") and offset == 11
    header, offset = protocol.decode_request_header(_view(b"\x00\x00\x00\x0d\x00\x00\x00\x05\xff\xff\x00rest"))
    assert header == (ApiKey.PRODUCE, 13, 5, None) and offset == 11
    with pytest.raises(KafkaError) as info:
        protocol.decode_request(ApiKey.FETCH, 2, _view(b""), 0)
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION


def test_truncated_header():
    with pytest.raises(ProtocolViolation, match="expected 8 bytes"):
        protocol.decode_request_header(_view(b"\x00\x12\x00"))
    with pytest.raises(ProtocolViolation, match=r"expected 7 bytes \(client_id\) at offset 10, 3 remain"):
        protocol.decode_request_header(_view(b"\x00\x12\x00\x03\x00\x00\x00\x01\x00\x07rdk"))


# ---------------------------------------------------------------------------- byte vectors

# ApiVersions v3 as librdkafka 2.0.2 sends it: header v2 (client_id is a classic nullable
# string, then an empty tag buffer), then compact strings and an empty tag buffer.
LIBRDKAFKA_API_VERSIONS_V3 = (
    b"\x00\x00\x00\x24"  # size 36
    b"\x00\x12\x00\x03\x00\x00\x00\x01"  # api key 18, version 3, correlation id 1
    b"\x00\x07rdkafka\x00"  # client_id, header tags
    b"\x0blibrdkafka\x062.0.2\x00"  # client_software_name/version, body tags
)


def test_api_versions_v3_request_vector():
    view = _view(LIBRDKAFKA_API_VERSIONS_V3)[4:]
    header, offset = protocol.decode_request_header(view)
    assert header == (ApiKey.API_VERSIONS, 3, 1, "rdkafka") and offset == 18
    body = protocol.decode_request(ApiKey.API_VERSIONS, 3, view, offset)
    assert body == {"client_software_name": "librdkafka", "client_software_version": "2.0.2"}
    assert protocol.encode_request(ApiKey.API_VERSIONS, 3, 1, "rdkafka", body) == LIBRDKAFKA_API_VERSIONS_V3


def test_api_versions_responses_use_header_v0():
    body = {"api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}]}
    assert _response_bytes(ApiKey.API_VERSIONS, 0, 9, body) == (
        b"\x00\x00\x00\x10\x00\x00\x00\x09" b"\x00\x00" b"\x00\x00\x00\x01\x00\x12\x00\x00\x00\x03"
    )
    assert _response_bytes(ApiKey.API_VERSIONS, 3, 9, body) == (
        b"\x00\x00\x00\x13\x00\x00\x00\x09"  # no header tag buffer (KIP-511)
        b"\x00\x00" b"\x02\x00\x12\x00\x00\x00\x03\x00" b"\x00\x00\x00\x00" b"\x00"
    )


def test_metadata_v0_request_vector():
    frame = protocol.encode_request(ApiKey.METADATA, 0, 2, "c", {"topics": [{"name": "t"}]})
    assert frame == b"\x00\x00\x00\x12\x00\x03\x00\x00\x00\x00\x00\x02\x00\x01c" b"\x00\x00\x00\x01\x00\x01t"


def test_produce_v3_request_vector_and_zero_copy_records():
    raw = (
        b"\x00\x00\x00\x03\x00\x00\x00\x07\x00\x00"  # produce v3, correlation 7, client_id ""
        b"\xff\xff\xff\xff\x00\x00\x27\x10"  # transactional_id null, acks -1, timeout 10000
        b"\x00\x00\x00\x01\x00\x01t"  # one topic "t"
        b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03RRR"  # partition 2, 3 bytes of records
    )
    frame = bytearray(raw)
    view = memoryview(frame)
    header, offset = protocol.decode_request_header(view)
    body = protocol.decode_request(ApiKey.PRODUCE, 3, view, offset)
    records = body["topic_data"][0]["partition_data"][0]["records"]
    assert body["transactional_id"] is None and body["acks"] == -1 and body["timeout_ms"] == 10000
    assert isinstance(records, memoryview) and records == b"RRR"
    records[0] = ord("X")  # the log rewrites batch headers in place
    assert frame.endswith(b"XRR")
    assert protocol.encode_request(ApiKey.PRODUCE, 3, 7, "", body)[4:] == frame


# ----------------------------------------------------------------------------- tagged fields


def _fetch_v12(partition: dict) -> dict:
    return {"responses": [{"topic": "t", "partitions": [dict(partition_index=0, records=b"", **partition)]}]}


def test_tagged_fields_at_default_are_not_written():
    absent = _response_bytes(ApiKey.FETCH, 12, 1, _fetch_v12({}))
    explicit = _response_bytes(ApiKey.FETCH, 12, 1, _fetch_v12({
        "current_leader": {"leader_id": -1, "leader_epoch": -1},
        "diverging_epoch": {"epoch": -1},
        "snapshot_id": {},
    }))
    assert absent == explicit
    assert absent.endswith(b"\x01\x00\x00\x00")  # empty records, partition/topic/body tags empty
    leader = _response_bytes(ApiKey.FETCH, 12, 1, _fetch_v12({"current_leader": {"leader_id": 3}}))
    # tag section: 1 field, tag 1, 9 bytes: leader_id 3, leader_epoch -1, empty nested tags
    assert b"\x01\x01\x09\x00\x00\x00\x03\xff\xff\xff\xff\x00" in leader
    _, decoded = protocol.decode_response(ApiKey.FETCH, 12, leader[4:])
    assert decoded["responses"][0]["partitions"][0]["current_leader"] == {"leader_id": 3, "leader_epoch": -1}
    # top-level tagged field of ApiVersions v3, an int64 defaulting to -1
    plain = _response_bytes(ApiKey.API_VERSIONS, 3, 1, {"finalized_features_epoch": -1})
    tagged = _response_bytes(ApiKey.API_VERSIONS, 3, 1, {"finalized_features_epoch": 5})
    assert plain.endswith(b"\x00\x00\x00\x00\x00") and tagged.endswith(b"\x01\x01\x08" + (5).to_bytes(8, "big"))


def test_unknown_tags_are_skipped():
    body = b"\x0blibrdkafka\x062.0.2" b"\x02" b"\x00\x03abc" b"\x09\x01z"  # two unknown tags
    view = _view(LIBRDKAFKA_API_VERSIONS_V3[4:22] + body)
    header, offset = protocol.decode_request_header(view)
    decoded = protocol.decode_request(ApiKey.API_VERSIONS, 3, view, offset)
    assert decoded == {"client_software_name": "librdkafka", "client_software_version": "2.0.2"}
    # an unknown tag inside a nested struct, next to a known one (Fetch v12 partition)
    frame = bytearray(_response_bytes(ApiKey.FETCH, 12, 1, _fetch_v12({"current_leader": {"leader_id": 3}})))
    marker = b"\x01\x01\x09\x00\x00\x00\x03\xff\xff\xff\xff\x00"
    at = frame.index(marker)
    frame[at:at + len(marker)] = b"\x02" + marker[1:] + b"\x07\x02zz"
    _, decoded = protocol.decode_response(ApiKey.FETCH, 12, bytes(frame[4:]))
    partition = decoded["responses"][0]["partitions"][0]
    assert partition["current_leader"] == {"leader_id": 3, "leader_epoch": -1}
    assert partition["snapshot_id"] == {"end_offset": -1, "epoch": -1}


def test_header_tags_are_skipped():
    raw = LIBRDKAFKA_API_VERSIONS_V3[4:21] + b"\x01\x05\x02hi" + LIBRDKAFKA_API_VERSIONS_V3[22:]
    header, offset = protocol.decode_request_header(_view(raw))
    assert header.client_id == "rdkafka" and offset == 22


# ---------------------------------------------------------------------------------- encoding


def test_strict_request_encoding_refuses_fields_the_version_cannot_carry():
    with pytest.raises(UnsupportedFieldVersion, match="include_topic_authorized_operations"):
        protocol.encode_request(ApiKey.METADATA, 7, 1, None, {"topics": None, "include_topic_authorized_operations": True})
    # ignorable fields are dropped silently, defaults are fine, responses are lenient
    protocol.encode_request(ApiKey.FETCH, 4, 1, None, {"rack_id": "r1", "session_epoch": -1})
    protocol.encode_request(ApiKey.METADATA, 7, 1, None, {"topics": None, "include_topic_authorized_operations": False})
    protocol.encode_response(ApiKey.PRODUCE, 3, 1, {"responses": [], "node_endpoints": ["ignored"]})


def test_metadata_null_topics_only_where_nullable():
    frame = protocol.encode_request(ApiKey.METADATA, 1, 1, None, {"topics": None})
    assert frame.endswith(b"\xff\xff\xff\xff")
    view = _view(frame)[4:]
    _, offset = protocol.decode_request_header(view)
    assert protocol.decode_request(ApiKey.METADATA, 1, view, offset)["topics"] is None
    v0 = _view(protocol.encode_request(ApiKey.METADATA, 0, 1, None, {"topics": []}))[4:]
    v0 = _view(bytes(v0[:-4]) + b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolViolation, match="non-nullable array MetadataRequest.topics"):
        protocol.decode_request(ApiKey.METADATA, 0, v0, protocol.decode_request_header(v0)[1])


class FileSlice:
    """Stands in for pyk.log.FileSlice: an opaque object the connection will sendfile."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)


@pytest.mark.parametrize("version", [4, 11, 12])
def test_sendable_records_become_their_own_parts(version):
    slices = [FileSlice(b"A" * 70), FileSlice(b"B" * 5)]
    body = {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "records": slices[0]},
        {"partition_index": 1, "records": slices[1]},
        {"partition_index": 2, "records": b"inline"},
        {"partition_index": 3, "records": None},
    ]}]}
    parts = protocol.encode_response(ApiKey.FETCH, version, 3, body)
    assert [type(p) for p in parts] == [bytes, FileSlice, bytes, FileSlice, bytes]
    assert parts[1] is slices[0] and parts[3] is slices[1]
    frame = b"".join(p.data if isinstance(p, FileSlice) else p for p in parts)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    inline = dict(body, responses=[{"topic": "t", "partitions": [
        {"partition_index": 0, "records": b"A" * 70},
        {"partition_index": 1, "records": b"B" * 5},
        {"partition_index": 2, "records": b"inline"},
        {"partition_index": 3, "records": None},
    ]}])
    assert frame == _response_bytes(ApiKey.FETCH, version, 3, inline)
    _, decoded = protocol.decode_response(ApiKey.FETCH, version, frame[4:])
    assert [p["records"] for p in decoded["responses"][0]["partitions"]] == [b"A" * 70, b"B" * 5, b"inline", None]


def test_absent_fields_take_defaults():
    frame = _response_bytes(ApiKey.PRODUCE, 8, 1, {"responses": [{"name": "t", "partition_responses": [{"index": 0}]}]})
    _, decoded = protocol.decode_response(ApiKey.PRODUCE, 8, frame[4:])
    partition = decoded["responses"][0]["partition_responses"][0]
    assert partition == {"index": 0, "error_code": 0, "base_offset": 0, "log_append_time_ms": -1,
                         "log_start_offset": -1, "record_errors": [], "error_message": None}
