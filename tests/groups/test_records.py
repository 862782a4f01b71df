"""The `__consumer_offsets` formats: Kafka's record schemas, the batches, the group placement hash.

Expected bytes are packed by hand with struct from the public schemas (not with pyk's codec),
and consumer-protocol bytes come from kafka-python's own encoder.
"""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyk import _native
from pyk.coordinator.batch import build_batch, decode_batches
from pyk.coordinator.consumer_protocol import decode_assignment, decode_subscription
from pyk.coordinator.offsets import java_string_hash, partition_for
from pyk.coordinator.records import (
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    CONSUMER_GROUP_MEMBER_METADATA,
    ConsumerGroupKey,
    ConsumerMemberAssignment,
    ConsumerMemberMetadata,
    GroupMetadataKey,
    GroupMetadataValue,
    MemberMetadata,
    OffsetAndMetadata,
    OffsetCommitKey,
    decode_consumer_group_value,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    encode_consumer_group_key,
    encode_consumer_group_value,
    encode_group_metadata_key,
    encode_group_metadata_value,
    encode_offset_commit_key,
    encode_offset_commit_value,
)


def s16(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(text.encode())) + text.encode()


def b32(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def test_offset_commit_key_layout() -> None:
    raw = encode_offset_commit_key("g", "topic", 7)
    assert raw == struct.pack(">h", 1) + s16("g") + s16("topic") + struct.pack(">i", 7)
    assert decode_key(raw) == OffsetCommitKey("g", "topic", 7)
    # key version 0 (ZooKeeper-era writers) reads the same
    assert decode_key(struct.pack(">h", 0) + raw[2:]) == OffsetCommitKey("g", "topic", 7)


def test_group_metadata_key_layout() -> None:
    raw = encode_group_metadata_key("my-group")
    assert raw == struct.pack(">h", 2) + s16("my-group")
    assert decode_key(raw) == GroupMetadataKey("my-group")


def test_consumer_group_record_keys_and_newer_types() -> None:
    # KIP-848 consumer-group records: key versions 3-8, the member ones (5, 7, 8) name the member.
    assert decode_key(struct.pack(">h", 3) + s16("g")) == ConsumerGroupKey(3, "g")
    raw = struct.pack(">h", 8) + s16("g") + s16("m-1")
    assert decode_key(raw) == ConsumerGroupKey(8, "g", "m-1")
    assert encode_consumer_group_key(ConsumerGroupKey(8, "g", "m-1")) == raw
    # Share and streams group records (9+) are not pyk's: skipped.
    assert decode_key(struct.pack(">h", 9) + s16("g")) is None


def test_current_member_assignment_value_layout() -> None:
    """ConsumerGroupCurrentMemberAssignmentValue v0, packed by hand from Kafka's JSON: flexible
    (compact arrays as length+1 uvarints, an empty tagged-field section after each struct)."""
    topic = uuid.UUID(int=0x0102)
    value = ConsumerMemberAssignment(5, 4, 1, [(topic, [0, 2])], [(topic, [1])])
    raw = encode_consumer_group_value(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, value)
    parts = b"\x02" + topic.bytes + b"\x03" + struct.pack(">ii", 0, 2) + b"\x00"
    revoking = b"\x02" + topic.bytes + b"\x02" + struct.pack(">i", 1) + b"\x00"
    assert raw == struct.pack(">hiib", 0, 5, 4, 1) + parts + revoking + b"\x00"
    assert decode_consumer_group_value(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, raw) == value
    # A tagged field written by a newer Kafka (KIP-1251's assignment epochs, tag 0) is skipped.
    tagged = raw[:-1] + b"\x01\x00\x01\x00"
    assert decode_consumer_group_value(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, tagged) == value


def test_member_metadata_value_round_trip() -> None:
    value = ConsumerMemberMetadata("i-1", None, "client", "/127.0.0.1", ["a", "b"], "c.*", 45000, "uniform")
    raw = encode_consumer_group_value(CONSUMER_GROUP_MEMBER_METADATA, value)
    assert raw[:6] == b"\x00\x00\x04i-1"  # v0, then instance_id as a compact string
    assert decode_consumer_group_value(CONSUMER_GROUP_MEMBER_METADATA, raw) == value


def test_offset_commit_value_v3_is_what_kafka_writes() -> None:
    value = OffsetAndMetadata(42, 5, "meta", 1_700_000_000_000)
    raw = encode_offset_commit_value(value)
    assert raw == struct.pack(">hqi", 3, 42, 5) + s16("meta") + struct.pack(">q", 1_700_000_000_000)
    assert decode_offset_commit_value(raw) == value


def test_offset_commit_value_with_expiry_is_v1() -> None:
    value = OffsetAndMetadata(1, -1, "", 10, 99)
    raw = encode_offset_commit_value(value)
    assert raw == struct.pack(">hq", 1, 1) + s16("") + struct.pack(">qq", 10, 99)
    assert decode_offset_commit_value(raw) == value


def test_offset_commit_value_v4_is_flexible() -> None:
    raw = encode_offset_commit_value(OffsetAndMetadata(9, 2, "ab", 3), version=4)
    # compact string: uvarint length + 1; an empty tagged-field section at the end
    assert raw == struct.pack(">hqi", 4, 9, 2) + b"\x03ab" + struct.pack(">q", 3) + b"\x00"
    assert decode_offset_commit_value(raw) == OffsetAndMetadata(9, 2, "ab", 3)


def _group_value() -> GroupMetadataValue:
    return GroupMetadataValue("consumer", 3, "range", "m1", 1234, [
        MemberMetadata("m1", "static-1", "client", "/127.0.0.1", 300000, 10000, b"sub", b"assign"),
        MemberMetadata("m2", None, "client", "/127.0.0.1", 300000, 10000, b"", b""),
    ])  # fmt: skip


def test_group_metadata_value_v3_layout() -> None:
    raw = encode_group_metadata_value(_group_value())
    expected = struct.pack(">h", 3) + s16("consumer") + struct.pack(">i", 3) + s16("range") + s16("m1")
    expected += struct.pack(">qi", 1234, 2)
    expected += s16("m1") + s16("static-1") + s16("client") + s16("/127.0.0.1") + struct.pack(">ii", 300000, 10000)
    expected += b32(b"sub") + b32(b"assign")
    expected += s16("m2") + s16(None) + s16("client") + s16("/127.0.0.1") + struct.pack(">ii", 300000, 10000)
    expected += b32(b"") + b32(b"")
    assert raw == expected
    assert decode_group_metadata_value(raw) == _group_value()


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_group_metadata_value_every_version_round_trips(version: int) -> None:
    value = _group_value()
    decoded = decode_group_metadata_value(encode_group_metadata_value(value, version))
    if version < 3:
        for m in value.members:
            m.group_instance_id = None
    if version < 2:
        value.current_state_timestamp = -1
    if version < 1:  # no rebalance timeout: the session timeout stands in, as in Kafka
        for m in value.members:
            m.rebalance_timeout = m.session_timeout
    assert decoded == value


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1), st.text(max_size=50),
       st.integers(0, 2**62), st.sampled_from([0, 1, 2, 3, 4]))
def test_offset_commit_value_round_trip(offset: int, epoch: int, metadata: str, ts: int, version: int) -> None:
    value = OffsetAndMetadata(offset, epoch if version >= 3 else -1, metadata, ts, ts + 1 if version == 1 else -1)
    assert decode_offset_commit_value(encode_offset_commit_value(value, version)) == value


def test_batch_is_a_valid_v2_batch_and_reads_back() -> None:
    records = [(b"k1", b"v1"), (b"k2", None), (b"k3", b"")]
    batch = build_batch(records, 1_700_000_000_000)
    assert _native.validate_batch(batch, 1 << 20) == 0
    info = _native.batch_info(batch)
    assert (info.records_count, info.last_offset_delta, info.producer_id, info.compression) == (3, 2, -1, 0)
    _native.assign_offsets(batch, 100, 0)
    got, next_offset = decode_batches(bytes(batch) + bytes(batch[:20]))  # a torn second batch is ignored
    assert got == [(100, b"k1", b"v1"), (101, b"k2", None), (102, b"k3", b"")]
    assert next_offset == 103


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_read_back(codec: int) -> None:
    batch = bytearray(_native.recompress_batch(build_batch([(b"k", b"v" * 100)] * 5, 1), codec))
    assert _native.batch_info(batch).compression == codec
    got, next_offset = decode_batches(batch)
    assert [(o, k, v) for o, k, v in got] == [(i, b"k", b"v" * 100) for i in range(5)]
    assert next_offset == 5


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0), ("a", 97), ("hello", 99162322), ("Aa", 2112), ("BB", 2112),
    ("polygenelubricants", -(2**31)), ("é€", 233 * 31 + 8364), ("\U0001F600", 0xD83D * 31 + 0xDE00),
])  # fmt: skip
def test_java_string_hash(text: str, expected: int) -> None:
    assert java_string_hash(text) == expected


def test_partition_for_matches_kafka() -> None:
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(Integer.MIN_VALUE) is 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("Aa", 7) == partition_for("BB", 7) == 2112 % 7


def test_consumer_protocol_against_kafka_python() -> None:
    from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription

    assert decode_subscription(ConsumerProtocolSubscription(0, ["a", "b"], b"").encode()).topics == ["a", "b"]
    v1 = decode_subscription(ConsumerProtocolSubscription(1, ["a"], None, [("a", [1])]).encode())
    assert (v1.topics, v1.user_data, v1.owned_partitions) == (["a"], None, {"a": [1]})
    assign = ConsumerProtocolAssignment(0, [("a", [0, 2]), ("b", [1])], b"").encode()
    assert decode_assignment(assign) == {"a": [0, 2], "b": [1]}
    assert decode_assignment(b"") == {}
