"""Record batch v2 functions: pyk._native against tests/ref, plus cross-checks against
kafka-python's encoder/decoder (an independent implementation of the format)."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

import pyk._native as native
import tests.ref as ref
from pyk.errors import ErrorCode
from tests.ref.builder import Record, build_batch
from tests.ref.parity import no_deadline, outcome
from tests.ref.strategies import batches, mutated, records

MAX = 1 << 20



def fields(info) -> dict:
    return {name: getattr(info, name) for name in ref.BATCH_INFO_FIELDS}


def kafka_python_batch(recs: list[Record], compression: int = 0) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=MAX)
    for i, r in enumerate(recs):
        headers = [(k.decode(), v) for k, v in r.headers]
        builder.append(i, timestamp=r.timestamp, key=r.key, value=r.value, headers=headers)
    return builder.build()


# batch_info

@no_deadline
@given(batches())
def test_batch_info_of_built_batches(impl, batch):
    info = impl.batch_info(batch)
    assert fields(info) == fields(ref.batch_info(batch))
    theirs = DefaultRecordBatch(bytes(batch))
    assert (info.base_offset, info.magic, info.crc, info.attributes & 0x37, info.last_offset_delta,
            info.max_timestamp, info.producer_id, info.producer_epoch, info.base_sequence) == (
        theirs.base_offset, theirs.magic, theirs.crc, theirs.attributes & 0x37, theirs.last_offset_delta,
        theirs.max_timestamp, theirs.producer_id, theirs.producer_epoch, theirs.base_sequence)
    assert info.size == len(batch)
    assert info.records_count == len(list(theirs))
    assert isinstance(info, impl.BatchInfo)


@no_deadline
@given(st.binary(min_size=0, max_size=90), st.integers(-3, 40))
def test_batch_info_of_any_bytes(data, offset):
    got, want = outcome(native.batch_info, data, offset), outcome(ref.batch_info, data, offset)
    if got[0] == "ok":
        assert want[0] == "ok" and fields(got[1]) == fields(want[1])
    else:
        assert got == want


def test_batch_info_short_and_constructor():
    with pytest.raises(ValueError):
        native.batch_info(bytes(60))
    batch = build_batch([Record(b"v")], base_offset=7)
    assert fields(native.BatchInfo(b"xx" + batch, 2)) == fields(native.batch_info(batch))
    assert "base_offset=7" in repr(native.batch_info(batch))


# validate_batch

@no_deadline
@given(batches())
def test_validate_accepts_built_batches(impl, batch):
    assert impl.validate_batch(batch, MAX) == 0


@no_deadline
@given(st.lists(records, min_size=1, max_size=6))
def test_validate_accepts_kafka_python_batches(impl, recs):
    batch = kafka_python_batch(recs)
    assert impl.validate_batch(batch, MAX) == 0
    info = impl.batch_info(batch)
    assert info.records_count == len(recs) and info.size == len(batch)


@no_deadline
@given(mutated(batches()), st.integers(0, 400))
def test_validate_mutated_batches_agree(batch, max_bytes):
    assert native.validate_batch(batch, max_bytes) == ref.validate_batch(batch, max_bytes)


def _recrc(batch: bytearray) -> bytearray:
    struct.pack_into(">I", batch, 17, ref.crc32c(batch[21:]))
    return batch


def _case_records_overrun() -> bytearray:
    batch = build_batch([Record(b"value")])
    batch[61] += 2  # record length now runs past the batch
    return _recrc(batch)


def _case_offset_delta() -> bytearray:
    batch = build_batch([Record(b"a"), Record(b"b")])
    second = 61 + 1 + batch[61] // 2  # zigzag length byte of record 0, then its body
    batch[second + 3] = 2 * 5  # record 1's offsetDelta (zigzag 5) instead of 1
    return _recrc(batch)


def _case_count(count: int, last_delta: int) -> bytearray:
    batch = build_batch([Record(b"a"), Record(b"b")])
    struct.pack_into(">i", batch, 57, count)
    struct.pack_into(">i", batch, 23, last_delta)
    return _recrc(batch)


def _case_magic(magic: int) -> bytearray:
    batch = build_batch([Record(b"a")])
    batch[16] = magic
    return batch


def _case_codec(codec: int) -> bytearray:
    batch = build_batch([Record(b"a")])
    batch[22] = (batch[22] & ~7) | codec
    return _recrc(batch)


ONE = build_batch([Record(b"hello", key=b"k", headers=[(b"h", None)])])

ERROR_CASES = {
    "ok": (ONE, 0),
    "empty": (b"", ErrorCode.CORRUPT_MESSAGE),
    "truncated header": (ONE[:40], ErrorCode.CORRUPT_MESSAGE),
    "truncated records": (ONE[:-1], ErrorCode.CORRUPT_MESSAGE),
    "trailing garbage": (ONE + b"\x00" * 5, ErrorCode.CORRUPT_MESSAGE),
    "two batches": (ONE + ONE, ErrorCode.INVALID_RECORD),
    "magic 1": (_case_magic(1), ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
    "magic 0 short": (_case_magic(0)[:30], ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
    "bad crc": (ONE[:-1] + bytes([ONE[-1] ^ 1]), ErrorCode.CORRUPT_MESSAGE),
    "count zero": (_case_count(0, -1), ErrorCode.INVALID_RECORD),
    "count negative": (_case_count(-1, -2), ErrorCode.INVALID_RECORD),
    "count vs last delta": (_case_count(2, 5), ErrorCode.INVALID_RECORD),
    "count too high": (_case_count(3, 2), ErrorCode.INVALID_RECORD),
    "count too low": (_case_count(1, 0), ErrorCode.INVALID_RECORD),
    "record overrun": (_case_records_overrun(), ErrorCode.INVALID_RECORD),
    "offset delta": (_case_offset_delta(), ErrorCode.INVALID_RECORD),
    "codec 5": (_case_codec(5), ErrorCode.INVALID_RECORD),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_validate_error_codes(impl, case):
    data, code = ERROR_CASES[case]
    assert impl.validate_batch(data, MAX) == code


def test_validate_size_limit(impl):
    assert impl.validate_batch(ONE, len(ONE)) == 0
    assert impl.validate_batch(ONE, len(ONE) - 1) == ErrorCode.MESSAGE_TOO_LARGE


def test_validate_large_batch_without_gil():
    batch = build_batch([Record(bytes(1000), key=b"k%d" % i) for i in range(100)])
    assert len(batch) > 64 * 1024
    assert native.validate_batch(batch, MAX) == 0
    batch[-1] ^= 1
    assert native.validate_batch(batch, MAX) == ErrorCode.CORRUPT_MESSAGE


@no_deadline
@given(codec=st.sampled_from([1, 2, 3, 4]), count=st.integers(1, 20), cap=st.integers(-1, 40_000))
def test_deep_validation_caps_the_decompressed_size(codec, count, cap):
    """A compressed batch is decompressed and walked only within max_decompressed bytes
    (MESSAGE_TOO_LARGE past it): the broker never inflates a small request into an unbounded
    buffer (a zstd/gzip bomb)."""
    recs = [Record(bytes(1000), key=b"k%d" % i) for i in range(count)]
    batch = build_batch(recs, compression=codec)
    plain = len(build_batch(recs)) - 61
    code = native.validate_batch(batch, MAX, True, cap)
    assert code == ref.validate_batch(batch, MAX, True, cap)
    assert code == (0 if cap < 0 or cap >= plain else ErrorCode.MESSAGE_TOO_LARGE)


def test_deep_validation_rejects_a_payload_that_does_not_decompress(impl):
    batch = build_batch([Record(b"v" * 100, key=b"k")], compression=1)
    body = bytearray(batch)
    body[61:] = bytes(len(body) - 61)  # zeros where the gzip stream was ...
    struct.pack_into(">I", body, 17, native.crc32c(bytes(body[21:])))  # ... under a valid CRC
    assert impl.validate_batch(body, MAX) == 0  # the shallow check cannot see it
    assert impl.validate_batch(body, MAX, True) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_deep_validation_after_a_broken_frame(codec):
    """The decoders' per-thread contexts are reused: a batch cut inside its compressed frame
    must not leave state that breaks (or excuses) the next batch."""
    good = build_batch([Record(b"v%d" % i * 50, key=b"k%d" % i) for i in range(200)], compression=codec)
    cut = bytearray(good[: 61 + (len(good) - 61) // 2])
    struct.pack_into(">i", cut, 8, len(cut) - 12)  # batchLength of the shorter batch ...
    struct.pack_into(">I", cut, 17, native.crc32c(bytes(cut[21:])))  # ... under a valid CRC
    for _ in range(3):
        assert native.validate_batch(cut, MAX, True) == ErrorCode.CORRUPT_MESSAGE
        assert native.validate_batch(good, MAX, True) == 0


def test_deep_validation_from_threads():
    """Each thread decompresses into its own scratch buffer: concurrent validations (the event
    loop, the cleaner, executor threads) see only their own batch."""
    from concurrent.futures import ThreadPoolExecutor

    batches_by_codec = [build_batch([Record(bytes([c]) * (100 + i), key=b"k%d" % i) for i in range(2000)],
                                    compression=c) for c in (1, 2, 3, 4)]
    bad = bytearray(batches_by_codec[2])
    bad[-1] ^= 1
    struct.pack_into(">I", bad, 17, native.crc32c(bytes(bad[21:])))
    cases = [(b, 0) for b in batches_by_codec] + [(bad, ErrorCode.CORRUPT_MESSAGE)]

    def run(i: int) -> bool:
        batch, expected = cases[i % len(cases)]
        return all(native.validate_batch(batch, MAX, True, 10 << 20) == expected for _ in range(20))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(run, range(40)))


# assign_offsets

@no_deadline
@given(batches(), st.integers(0, 1 << 62), st.integers(-1, 1 << 31 - 1), st.none() | st.integers(0, 1 << 45))
def test_assign_offsets(impl, batch, base_offset, epoch, append_time):
    args = (base_offset, epoch) if append_time is None else (base_offset, epoch, append_time)
    mine, theirs = bytearray(batch), bytearray(batch)
    last = impl.assign_offsets(mine, *args)
    assert last == ref.assign_offsets(theirs, *args)
    assert mine == theirs
    info = native.batch_info(mine)
    assert (info.base_offset, info.partition_leader_epoch, info.last_offset) == (base_offset, epoch, last)
    assert native.validate_batch(mine, MAX) == 0  # CRC still (or again) right
    decoded = DefaultRecordBatch(bytes(mine))
    assert decoded.validate_crc()
    if append_time is None:
        assert mine[17:] == batch[17:]
    else:
        assert info.timestamp_type == 1 and info.max_timestamp == append_time
        assert [r.timestamp for r in decoded] == [append_time] * info.records_count


@pytest.mark.parametrize("args", [
    (b"x" * 80, 0, 0),                          # read-only
    (bytearray(60), 0, 0),                      # short
    (bytearray(ONE[:-1]), 0, 0, 5),             # LogAppendTime needs the whole batch
    (bytearray(ONE), 1 << 63, 0),
    (bytearray(ONE), 0, 1 << 31),
    ("x", 0, 0),
])
def test_assign_offsets_errors(args):
    assert outcome(native.assign_offsets, *args) == outcome(ref.assign_offsets, *args)
    assert outcome(native.assign_offsets, *args)[0] == "raise"


def test_assign_offsets_on_memoryview_slice():
    frame = bytearray(b"\xaa" * 7) + ONE + b"\xbb" * 3
    view = memoryview(frame)[7:7 + len(ONE)]
    assert native.assign_offsets(view, 100, 3, 1234) == 100
    assert frame[:7] == b"\xaa" * 7 and frame[-3:] == b"\xbb" * 3
    assert native.validate_batch(view, MAX) == 0


# scan_batches / find_batch

@st.composite
def segments(draw):
    """Consecutive batches with increasing offsets, maybe followed by a torn or corrupt tail."""
    parts, offset = [], draw(st.integers(0, 1000))
    for batch in draw(st.lists(batches(), max_size=5)):
        ref.assign_offsets(batch, offset, 0)
        offset = ref.batch_info(batch).last_offset + 1 + draw(st.integers(0, 3))
        parts.append(bytes(batch))
    data = b"".join(parts)
    if parts and draw(st.booleans()):
        data = bytes(draw(mutated(st.just(bytearray(data)))))
    return data


@no_deadline
@given(segments(), st.integers(-1, 200))
def test_scan_batches(impl, data, start):
    assert outcome(impl.scan_batches, data, start) == outcome(ref.scan_batches, data, start)


@no_deadline
@given(segments())
def test_scan_batches_from_zero(data):
    result = native.scan_batches(data)
    assert result == ref.scan_batches(data)
    for pos, base, last in zip(result.positions, result.base_offsets, result.last_offsets, strict=True):
        info = native.batch_info(data, pos)
        assert (info.base_offset, info.last_offset) == (base, last)
    assert result.positions.typecode == "q"


def test_scan_stops_at_torn_tail():
    batches_ = [build_batch([Record(b"x" * i)], base_offset=i) for i in range(1, 4)]
    data = b"".join(batches_)
    full = native.scan_batches(data)
    assert full.valid_bytes == len(data) and list(full.base_offsets) == [1, 2, 3]
    torn = native.scan_batches(data[:-5])
    assert torn.valid_bytes == len(data) - len(batches_[-1]) and list(torn.positions) == [0, len(batches_[0])]
    corrupt = bytearray(data)
    corrupt[len(batches_[0]) + 30] ^= 0xFF
    assert native.scan_batches(corrupt).valid_bytes == len(batches_[0])
    later = native.scan_batches(data, len(batches_[0]))
    assert later.valid_bytes == len(data) - len(batches_[0]) and list(later.base_offsets) == [2, 3]


def test_scan_large_without_gil():
    batch = bytes(build_batch([Record(bytes(500))]))
    data = batch * 400
    result = native.scan_batches(data)
    assert result.valid_bytes == len(data) and len(result.positions) == 400


@no_deadline
@given(segments(), st.integers(-5, 1200))
def test_find_batch(impl, data, target):
    assert outcome(impl.find_batch, data, target) == outcome(ref.find_batch, data, target)


def test_find_batch_positions():
    batches_ = [build_batch([Record(b"a"), Record(b"b")], base_offset=10 * i) for i in range(3)]
    data = b"".join(batches_)
    size = len(batches_[0])
    assert native.find_batch(data, 0) == (0, 0)
    assert native.find_batch(data, 1) == (0, 0)
    assert native.find_batch(data, 2) == (size, size)
    assert native.find_batch(data, 21) == (2 * size, 2 * size)
    assert native.find_batch(data, 22) == (-1, 3 * size)
    assert native.find_batch(data[:-1], 21) == (-1, 2 * size)


# segment_find_batch: LogSegment.translate_offset's walk over a segment file

@no_deadline
@given(segments(), st.integers(0, 3), st.integers(0, 300), st.integers(-5, 1200), st.integers(0, 64))
def test_segment_find_batch(impl, tmp_path_factory, data, big, position, target, cut):
    """Small batches around large ones (some larger than the window: judged by their header)."""
    large = [bytes(build_batch([Record(bytes(9000 + 100 * i))], base_offset=2000 + i)) for i in range(big)]
    content = data + b"".join(large)
    path = tmp_path_factory.mktemp("seg") / "00000000000000000000.log"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        end = max(len(content) - cut, 0)
        got = outcome(impl.segment_find_batch, fd, position, end, target)
        assert got == outcome(ref.segment_find_batch, fd, position, end, target)
    finally:
        os.close(fd)


def test_segment_find_batch_positions(tmp_path):
    batches_ = [bytes(build_batch([Record(b"a"), Record(b"b")], base_offset=10 * i)) for i in range(3)]
    path = tmp_path / "s.log"
    path.write_bytes(b"".join(batches_))
    size = len(batches_[0])
    fd = os.open(path, os.O_RDONLY)
    try:
        assert native.segment_find_batch(fd, 0, 3 * size, 1) == (0, size, 0, 1)
        assert native.segment_find_batch(fd, 0, 3 * size, 2) == (size, size, 10, 11)
        assert native.segment_find_batch(fd, size, 3 * size, 0) == (size, size, 10, 11)
        assert native.segment_find_batch(fd, 0, 3 * size, 22) is None
        # A batch running past `end` is judged by its header (the read clips it to its limit).
        assert native.segment_find_batch(fd, 0, 3 * size - 1, 21) == (2 * size, size, 20, 21)
        assert native.segment_find_batch(fd, 0, 2 * size + 60, 21) is None  # not even a header
    finally:
        os.close(fd)
    # Batches larger than the window: judged and skipped by their headers alone.
    large = [bytes(build_batch([Record(bytes(20000))], base_offset=i)) for i in range(3)]
    path.write_bytes(b"".join(large))
    fd = os.open(path, os.O_RDONLY)
    try:
        total = sum(map(len, large))
        assert native.segment_find_batch(fd, 0, total, 2) == (2 * len(large[0]), len(large[2]), 2, 2)
        assert native.segment_find_batch(fd, 0, total - 1, 2) == (2 * len(large[0]), len(large[2]), 2, 2)
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        native.segment_find_batch(fd, 0, 3 * size, 0)
