"""Up-conversion of magic 0/1 message sets (Produce v0-v2) to one v2 batch: pyk/log/legacy.py
through LogValidator and PartitionLog.append.

Message sets come from kafka-python's LegacyRecordBatchBuilder (an independent writer of the
legacy formats, including its magic 0 LZ4 header-checksum quirk); the malformed ones that no
client writes (nested compression, mixed magics, bad CRCs) are built by `message()` below.
Converted batches are checked with pyk._native (validate_batch deep, batch_info) and decoded
with kafka-python's DefaultRecordBatch, so neither side of the comparison is pyk's own reader.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.codec import lz4_encode, lz4_encode_old_kafka
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log import legacy
from pyk.log.config import LogConfig
from pyk.log.validator import LogValidator
from tests.log.conftest import BASE_TS, batch, open_log, small_config

NOW = BASE_TS + 60_000
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3}

Item = tuple[bytes | None, bytes | None, int]  # key, value, timestamp


def items(n: int = 6) -> list[Item]:
    # A null key, a null value and an empty value among them; values long enough to compress.
    out: list[Item] = []
    for i in range(n):
        key = None if i == 1 else b"key-%d" % i
        value = None if i == 2 else b"" if i == 3 else (b"value %d " % i) * 20
        out.append((key, value, BASE_TS + 7 * i))
    return out


def legacy_set(magic: int, codec: int, recs: list[Item]) -> memoryview:
    """A message set as a kafka-python producer sends it (offsets 0..n-1, relative for v1)."""
    builder = LegacyRecordBatchBuilder(magic, codec, 1 << 24)
    for i, (key, value, ts) in enumerate(recs):
        assert builder.append(i, ts, key, value) is not None
    return memoryview(bytearray(builder.build()))


def message(magic: int, attributes: int, key: bytes | None, value: bytes | None, *, timestamp: int = BASE_TS,
            offset: int = 0, crc: int | None = None) -> bytes:
    """One legacy message with its log overhead, by hand (for shapes no client writes)."""
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    for data in (key, value):
        body += struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    body = struct.pack(">I", zlib.crc32(body) if crc is None else crc) + body
    return struct.pack(">qi", offset, len(body)) + body


def convert(records: memoryview | bytes, config: LogConfig | None = None, now: int = NOW) -> memoryview:
    view = memoryview(bytearray(records)) if isinstance(records, bytes) else records
    out, _ = LogValidator.validate(view, config or LogConfig(), now)
    return out


def decoded(batch_bytes: memoryview) -> list[tuple[int, int, bytes | None, bytes | None, list]]:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(bytes(batch_bytes))]


def expect(code: ErrorCode, records: memoryview | bytes, config: LogConfig | None = None) -> KafkaError:
    with pytest.raises(KafkaError) as info:
        convert(records, config)
    assert info.value.code == code, info.value
    return info.value


# Conversion -------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("magic", [0, 1])
def test_up_converts_to_one_v2_batch(magic: int, codec: str) -> None:
    recs = items()
    out = convert(legacy_set(magic, CODECS[codec], recs))
    assert _native.validate_batch(out, 1 << 20, True) == 0
    info = _native.batch_info(out)
    assert info.size == len(out)
    assert (info.magic, info.compression, info.records_count, info.last_offset_delta) == (2, CODECS[codec], 6, 5)
    assert (info.producer_id, info.producer_epoch, info.base_sequence) == (-1, -1, -1)
    assert not info.is_transactional and not info.is_control and info.timestamp_type == 0
    expected_ts = [ts if magic == 1 else -1 for _, _, ts in recs]
    assert (info.first_timestamp, info.max_timestamp) == (expected_ts[0], max(expected_ts))
    assert decoded(out) == [(i, ts, k, v, []) for i, ((k, v, _), ts) in enumerate(zip(recs, expected_ts, strict=True))]


@pytest.mark.parametrize("magic", [0, 1])
def test_uncompressed_messages_each_become_a_record(magic: int) -> None:
    # Uncompressed legacy producers send one message per record, each its own "batch" in Kafka's
    # terms: they all land in the one v2 batch, in order, whatever their offsets said.
    data = b"".join(message(magic, 0, b"k%d" % i, b"v%d" % i, timestamp=BASE_TS + i, offset=100 - i)
                    for i in range(4))
    out = convert(data)
    ts = [BASE_TS + i if magic else -1 for i in range(4)]
    assert decoded(out) == [(i, ts[i], b"k%d" % i, b"v%d" % i, []) for i in range(4)]


def test_single_record_and_large_values() -> None:
    value = os.urandom(300_000)
    out = convert(legacy_set(1, 1, [(None, value, BASE_TS)]))
    assert decoded(out) == [(0, BASE_TS, None, value, [])]


@settings(max_examples=40, deadline=None)
@given(magic=st.sampled_from([0, 1]), codec=st.sampled_from(list(CODECS.values())),
       recs=st.lists(st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=300),
                               st.integers(BASE_TS - 5000, BASE_TS + 5000)), min_size=1, max_size=30))
def test_conversion_keeps_every_record(magic: int, codec: int, recs: list[Item]) -> None:
    out = convert(legacy_set(magic, codec, recs))
    assert _native.validate_batch(out, 1 << 24, True) == 0
    assert decoded(out) == [(i, ts if magic else -1, k, v, []) for i, (k, v, ts) in enumerate(recs)]


@pytest.mark.parametrize(("target", "source"), [("gzip", 2), ("uncompressed", 1), ("lz4", 0), ("zstd", 3)])
def test_compression_type_is_applied_while_converting(target: str, source: int) -> None:
    config = LogConfig().with_overrides({"compression.type": target})
    out = convert(legacy_set(1, source, items()), config)
    info = _native.batch_info(out)
    assert info.compression == config.target_codec
    assert _native.validate_batch(out, 1 << 20, True) == 0
    assert [r[3] for r in decoded(out)] == [v for _, v, _ in items()]


@pytest.mark.parametrize("magic", [0, 1])
def test_log_append_time_stamps_converted_records(tmp_path, magic: int) -> None:
    config = small_config(**{"message.timestamp.type": "LogAppendTime"})
    plog = open_log(str(tmp_path / "t-0"), config)
    info = plog.append(legacy_set(magic, 1, items(3)), NOW)
    assert (info.first_offset, info.last_offset, info.log_append_time) == (0, 2, NOW)
    raw = _read_log(plog)
    header = _native.batch_info(raw)
    assert (header.timestamp_type, header.max_timestamp) == (1, NOW)
    assert [r[1] for r in decoded(raw)] == [NOW] * 3
    plog.close()


def test_appended_between_v2_batches_with_contiguous_offsets(tmp_path) -> None:
    plog = open_log(str(tmp_path / "t-0"), small_config(**{"segment.bytes": "1000000"}))
    assert plog.append(batch(3), NOW).last_offset == 2
    info = plog.append(legacy_set(0, 2, items(5)), NOW)
    assert (info.first_offset, info.last_offset, info.log_append_time, info.duplicate) == (3, 7, -1, False)
    assert plog.append(legacy_set(1, 0, items(2)), NOW).first_offset == 8
    assert plog.append(batch(1), NOW).first_offset == 10
    raw = _read_log(plog)
    infos = []
    pos = 0
    while pos < len(raw):
        infos.append(_native.batch_info(raw, pos))
        assert _native.validate_batch(raw[pos:pos + infos[-1].size], 1 << 20, True) == 0
        pos += infos[-1].size
    assert [(i.base_offset, i.last_offset, i.partition_leader_epoch) for i in infos] == [
        (0, 2, 0), (3, 7, 0), (8, 9, 0), (10, 10, 0)]
    assert [r[0] for r in decoded(raw[infos[0].size:infos[0].size + infos[1].size])] == [3, 4, 5, 6, 7]
    plog.close()


def _read_log(plog) -> memoryview:
    data = plog.read(plog.log_start_offset, 1 << 24)
    return memoryview(os.pread(data.records.fd, data.records.size, data.records.position))


# LZ4 framing of magic 0 (KAFKA-3160) -------------------------------------------------------------


def test_magic0_lz4_header_checksum_is_repaired() -> None:
    payload = b"legacy lz4 " * 100
    broken = lz4_encode_old_kafka(payload)  # Kafka 0.8/0.9's HC, over the magic number too
    with pytest.raises(ValueError):
        _native.decompress(3, broken)  # liblz4 checks the HC: the repair is needed
    assert _native.decompress(3, legacy.fix_lz4_header_checksum(broken)) == payload
    # kafka-python's standard frame carries a content size (FLG bit 3), which moves the HC 8
    # bytes further; the repair follows the FLG bits.
    correct = lz4_encode(payload)
    assert correct[4] & 0x08
    assert legacy.fix_lz4_header_checksum(correct) == correct
    damaged = bytearray(correct)
    damaged[14] ^= 0xFF
    with pytest.raises(ValueError):
        _native.decompress(3, damaged)
    assert legacy.fix_lz4_header_checksum(damaged) == correct


def test_magic0_lz4_with_a_correct_checksum_is_accepted_too() -> None:
    # Kafka ignores the HC of magic 0 messages entirely, so a client that got it right works.
    inner = message(0, 0, b"k", b"v" * 50)
    data = message(0, 3, None, lz4_encode(inner))
    assert decoded(convert(data)) == [(0, -1, b"k", b"v" * 50, [])]


# Errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("magic", [0, 1])
def test_bad_crc_is_corrupt(magic: int) -> None:
    data = bytearray(legacy_set(magic, 0, items(3)))
    data[-1] ^= 0x01
    assert "CRC" in expect(ErrorCode.CORRUPT_MESSAGE, memoryview(data)).message
    good = message(magic, 0, b"k", b"v")
    expect(ErrorCode.CORRUPT_MESSAGE, good + message(magic, 0, b"k", b"v", crc=0x12345678))


def test_bad_inner_crc_is_corrupt() -> None:
    inner = message(1, 0, b"k", b"v") + message(1, 0, b"k", b"w", crc=1, offset=1)
    expect(ErrorCode.CORRUPT_MESSAGE, message(1, 1, None, _native.compress(1, inner), offset=1))


@pytest.mark.parametrize("cut", [1, 5, 13, 30])
def test_truncated_is_corrupt(cut: int) -> None:
    data = bytes(legacy_set(1, 0, items(3)))
    expect(ErrorCode.CORRUPT_MESSAGE, data[:-cut])


def test_trailing_garbage_and_bad_lengths_are_corrupt() -> None:
    good = message(1, 0, b"k", b"v")
    expect(ErrorCode.CORRUPT_MESSAGE, good + b"\x00" * 20)  # a message too short for its magic
    # A key length that runs past the message (CRC made to match, so the length is what fails).
    body = struct.pack(">bbqi", 1, 0, BASE_TS, 50) + b"k" + struct.pack(">i", -1)
    body = struct.pack(">I", zlib.crc32(body)) + body
    expect(ErrorCode.CORRUPT_MESSAGE, struct.pack(">qi", 0, len(body)) + body)
    # A declared size beyond the key and value.
    body = struct.pack(">bbqii", 1, 0, BASE_TS, -1, -1) + b"xx"
    body = struct.pack(">I", zlib.crc32(body)) + body
    expect(ErrorCode.CORRUPT_MESSAGE, struct.pack(">qi", 0, len(body)) + body)


def test_nested_compression_is_corrupt() -> None:
    inner_wrapper = message(1, 1, None, _native.compress(1, message(1, 0, b"k", b"v")))
    err = expect(ErrorCode.CORRUPT_MESSAGE, message(1, 2, None, _native.compress(2, inner_wrapper)))
    assert "compressed" in err.message


def test_payload_that_does_not_decompress_is_corrupt() -> None:
    for codec in (1, 2, 3):
        expect(ErrorCode.CORRUPT_MESSAGE, message(1, codec, None, b"definitely not compressed data"))


def test_unsupported_and_unknown_codecs() -> None:
    expect(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, message(1, 4, None, _native.compress(4, message(1, 0, None, b"v"))))
    expect(ErrorCode.CORRUPT_MESSAGE, message(1, 5, None, b"x"))


def test_disallowed_shapes_are_invalid_records() -> None:
    plain0, plain1 = message(0, 0, b"k", b"v"), message(1, 0, b"k", b"v")
    wrapped = message(1, 1, None, _native.compress(1, plain1))
    expect(ErrorCode.INVALID_RECORD, plain0 + plain1)  # mixed magics
    expect(ErrorCode.INVALID_RECORD, wrapped + plain1)  # a wrapper that is not alone
    expect(ErrorCode.INVALID_RECORD, message(1, 1, None, _native.compress(1, plain0)))  # inner magic differs
    expect(ErrorCode.INVALID_RECORD, message(1, 1, None, _native.compress(1, b"")))  # empty wrapper
    expect(ErrorCode.INVALID_RECORD, message(1, 1, None, None))  # null wrapper value
    # v1 wrapper offset below its last inner offset (0 is allowed: older librdkafka sends it).
    inner = message(1, 0, None, b"a") + message(1, 0, None, b"b", offset=1) + message(1, 0, None, b"c", offset=2)
    assert len(decoded(convert(message(1, 1, None, _native.compress(1, inner), offset=0)))) == 3
    expect(ErrorCode.INVALID_RECORD, message(1, 1, None, _native.compress(1, inner), offset=1))
    # A magic 2 message inside a legacy set.
    expect(ErrorCode.INVALID_RECORD, plain1 + b"\x00" * 16 + b"\x02" + b"\x00" * 20)


def test_compacted_topic_needs_keys() -> None:
    config = LogConfig().with_overrides({"cleanup.policy": "compact"})
    assert len(decoded(convert(legacy_set(1, 1, [(b"k", b"v", BASE_TS)]), config))) == 1
    expect(ErrorCode.INVALID_RECORD, legacy_set(1, 1, [(b"k", b"v", BASE_TS), (None, b"v", BASE_TS)]), config)


def test_timestamps() -> None:
    config = LogConfig().with_overrides({"message.timestamp.before.max.ms": "1000",
                                         "message.timestamp.after.max.ms": "1000"})
    expect(ErrorCode.INVALID_TIMESTAMP, legacy_set(1, 0, [(None, b"v", NOW - 5000)]), config)
    expect(ErrorCode.INVALID_TIMESTAMP, legacy_set(1, 1, [(None, b"v", NOW), (None, b"v", NOW + 5000)]), config)
    # No timestamp (-1: all of magic 0, or a v1 producer without one) is exempt, as in Kafka.
    assert [r[1] for r in decoded(convert(legacy_set(0, 1, [(None, b"v", 0)] * 2), config))] == [-1, -1]
    assert [r[1] for r in decoded(convert(message(1, 0, None, b"v", timestamp=-1), config))] == [-1]
    # Producers may not claim LogAppendTime.
    expect(ErrorCode.INVALID_TIMESTAMP, message(1, 0x08, None, b"v"))
    expect(ErrorCode.INVALID_TIMESTAMP, message(1, 0x09, None, _native.compress(1, message(1, 0, None, b"v"))))


def test_oversize() -> None:
    config = LogConfig().with_overrides({"max.message.bytes": "2000"})
    # One message larger than the limit.
    expect(ErrorCode.MESSAGE_TOO_LARGE, legacy_set(1, 0, [(None, b"x" * 3000, BASE_TS)]), config)
    # Each message fits, the converted batch does not.
    recs = [(None, os.urandom(300), BASE_TS)] * 10
    data = legacy_set(1, 0, recs)
    assert all(m.size < 2000 for m in legacy.iter_messages(data, "test"))
    expect(ErrorCode.MESSAGE_TOO_LARGE, data, config)
    # A compressed wrapper that fits but converts to a batch that does not (recompressed as
    # uncompressed by compression.type).
    plain = config.with_overrides({"compression.type": "uncompressed"})
    expect(ErrorCode.MESSAGE_TOO_LARGE, legacy_set(1, 1, [(None, b"y" * 5000, BASE_TS)]), plain)


def test_decompression_bomb_is_bounded() -> None:
    """A wrapper whose payload expands past message.decompressed.max.bytes is CORRUPT_MESSAGE,
    as a v2 batch that does (pyk.log.validator)."""
    bounded = LogConfig(None, None, 10_000)
    expect(ErrorCode.CORRUPT_MESSAGE, legacy_set(1, 1, [(None, b"z" * 20_000, BASE_TS)]), bounded)
    assert len(decoded(convert(legacy_set(1, 1, [(None, b"z" * 5_000, BASE_TS)]), bounded))) == 1


def test_v2_batches_take_the_v2_path_unchanged() -> None:
    v2 = batch(3)
    out = convert(v2)
    assert out.obj is v2.obj  # validated in place, no copy
