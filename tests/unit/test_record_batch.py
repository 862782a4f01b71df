"""pyk.log.record_batch, the one home of the RecordBatch v2 layout: its constants equal the
native ones (ext/consts.pxi through pyk._native.BATCH_LAYOUT), its readers and writer agree
with kafka-python's independent implementation of the format, and every batch writer that
uses it produces the bytes it produced before the layout moved there (golden bytes)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch

import pyk._native as native
from pyk.bench.batches import BatchTemplate
from pyk.coordinator import batch as coordinator_batch
from pyk.log import cleaner, control, legacy
from pyk.log import record_batch as rb
from pyk.log.config import LogConfig
from tests.log.test_legacy import BASE_TS, NOW, message

# pyk.log.record_batch name -> ext/consts.pxi name.
NATIVE_NAMES = {
    "BASE_OFFSET_OFFSET": "BATCH_BASE_OFFSET_OFFSET",
    "LENGTH_OFFSET": "BATCH_LENGTH_OFFSET",
    "PARTITION_LEADER_EPOCH_OFFSET": "BATCH_PARTITION_LEADER_EPOCH_OFFSET",
    "MAGIC_OFFSET": "BATCH_MAGIC_OFFSET",
    "CRC_OFFSET": "BATCH_CRC_OFFSET",
    "ATTRIBUTES_OFFSET": "BATCH_ATTRIBUTES_OFFSET",
    "LAST_OFFSET_DELTA_OFFSET": "BATCH_LAST_OFFSET_DELTA_OFFSET",
    "BASE_TIMESTAMP_OFFSET": "BATCH_FIRST_TIMESTAMP_OFFSET",
    "MAX_TIMESTAMP_OFFSET": "BATCH_MAX_TIMESTAMP_OFFSET",
    "PRODUCER_ID_OFFSET": "BATCH_PRODUCER_ID_OFFSET",
    "PRODUCER_EPOCH_OFFSET": "BATCH_PRODUCER_EPOCH_OFFSET",
    "BASE_SEQUENCE_OFFSET": "BATCH_BASE_SEQUENCE_OFFSET",
    "RECORDS_COUNT_OFFSET": "BATCH_RECORDS_COUNT_OFFSET",
    "BATCH_HEADER_SIZE": "BATCH_HEADER_SIZE",
    "LOG_OVERHEAD": "BATCH_LOG_OVERHEAD",
    "MIN_BATCH_LENGTH": "BATCH_MIN_LENGTH",
    "MAGIC": "BATCH_MAGIC_V2",
    "ATTR_COMPRESSION_MASK": "BATCH_ATTR_COMPRESSION_MASK",
    "ATTR_TIMESTAMP_TYPE": "BATCH_ATTR_TIMESTAMP_TYPE",
    "ATTR_TRANSACTIONAL": "BATCH_ATTR_TRANSACTIONAL",
    "ATTR_CONTROL": "BATCH_ATTR_CONTROL",
    "ATTR_DELETE_HORIZON": "BATCH_ATTR_DELETE_HORIZON",
}

TS = 1_700_000_000_000


@pytest.mark.parametrize("name", sorted(NATIVE_NAMES))
def test_each_constant_mirrors_the_native_one(name: str) -> None:
    assert getattr(rb, name) == native.BATCH_LAYOUT[NATIVE_NAMES[name]]


def test_every_native_layout_constant_is_mirrored() -> None:
    assert sorted(native.BATCH_LAYOUT) == sorted(NATIVE_NAMES.values())


def test_header_struct_matches_the_offsets() -> None:
    assert rb.HEADER.size == rb.BATCH_HEADER_SIZE
    sizes = {rb.BASE_OFFSET_OFFSET: "q", rb.LENGTH_OFFSET: "i", rb.PARTITION_LEADER_EPOCH_OFFSET: "i",
             rb.MAGIC_OFFSET: "b", rb.CRC_OFFSET: "I", rb.ATTRIBUTES_OFFSET: "h", rb.LAST_OFFSET_DELTA_OFFSET: "i",
             rb.BASE_TIMESTAMP_OFFSET: "q", rb.MAX_TIMESTAMP_OFFSET: "q", rb.PRODUCER_ID_OFFSET: "q",
             rb.PRODUCER_EPOCH_OFFSET: "h", rb.BASE_SEQUENCE_OFFSET: "i", rb.RECORDS_COUNT_OFFSET: "i"}
    assert ">" + "".join(sizes[offset] for offset in sorted(sizes)) == rb.HEADER.format
    ends = sorted(sizes)[1:] + [rb.BATCH_HEADER_SIZE]
    assert all(offset + struct.calcsize(">" + sizes[offset]) == end for offset, end in zip(sorted(sizes), ends, strict=True))


headers = st.builds(
    rb.BatchHeader,
    attributes=st.integers(0, 0x7F & ~rb.ATTR_COMPRESSION_MASK),  # uncompressed: the records are plain
    last_offset_delta=st.integers(0, 2),
    base_timestamp=st.integers(0, 2**62),
    max_timestamp=st.integers(0, 2**62),
    records_count=st.just(3),
    producer_id=st.integers(-1, 2**62),
    producer_epoch=st.integers(-1, 2**15 - 1),
    base_sequence=st.integers(-1, 2**31 - 1),
    base_offset=st.integers(0, 2**62),
    partition_leader_epoch=st.integers(-1, 2**31 - 1),
)


def _records() -> bytearray:
    """Three records (offset deltas 0..2), as the coordinators write them."""
    built = coordinator_batch.build_batch([(b"a", b"1"), (b"b", None), (b"c", b"333")], TS)
    return built[rb.BATCH_HEADER_SIZE:]


@given(headers, st.integers(0, 10))
def test_written_header_reads_back_and_its_crc_holds(header: rb.BatchHeader, split: int) -> None:
    """kafka-python, an independent reader of the format, sees the fields and a valid CRC; the
    readers and read_header see them too; a batch written as head + tail equals it joined."""
    records = _records()
    batch = bytearray(rb.BATCH_HEADER_SIZE) + records
    rb.write_header(batch, header)
    head = bytearray(rb.BATCH_HEADER_SIZE) + records[:split]
    rb.write_header(head, header, memoryview(records)[split:])
    assert bytes(head) + records[split:] == batch
    assert rb.read_header(batch) == header
    theirs = DefaultRecordBatch(bytes(batch))
    assert theirs.validate_crc()
    assert (theirs.base_offset, theirs.producer_id, theirs.producer_epoch, theirs.base_sequence) == (
        header.base_offset, header.producer_id, header.producer_epoch, header.base_sequence)
    assert (theirs.first_timestamp, theirs.max_timestamp, theirs.last_offset_delta) == (
        header.base_timestamp, header.max_timestamp, header.last_offset_delta)
    assert theirs.is_transactional == bool(header.attributes & rb.ATTR_TRANSACTIONAL)
    assert theirs.is_control_batch == bool(header.attributes & rb.ATTR_CONTROL)
    assert rb.READ_OFFSET_LENGTH.unpack_from(batch) == (header.base_offset, len(batch) - rb.LOG_OVERHEAD)
    assert rb.READ_LENGTH.unpack_from(batch)[0] == len(batch) - rb.LOG_OVERHEAD
    assert rb.READ_ATTRIBUTES.unpack_from(batch)[0] == header.attributes
    assert rb.READ_LAST_OFFSET_DELTA.unpack_from(batch)[0] == header.last_offset_delta
    assert rb.READ_BASE_TIMESTAMP.unpack_from(batch)[0] == header.base_timestamp
    assert rb.READ_MAX_TIMESTAMP.unpack_from(batch)[0] == header.max_timestamp
    assert rb.READ_PRODUCER.unpack_from(batch) == (header.producer_id, header.producer_epoch, header.base_sequence)
    assert rb.READ_RECORDS_COUNT.unpack_from(batch)[0] == header.records_count
    framed = bytes(7) + batch  # a reader's position is the batch's start
    assert rb.READ_MAX_TIMESTAMP.unpack_from(framed, 7)[0] == header.max_timestamp


def _written() -> dict[str, bytes]:
    """What each batch writer produces for fixed inputs."""
    out: dict[str, bytes] = {
        "marker_commit": bytes(control.build_marker(1234, 5, True, 7, TS)),
        "marker_abort": bytes(control.build_marker(99, 0, False, 3, TS + 1)),
        "coordinator": bytes(coordinator_batch.build_batch([(b"k", b"v"), (b"k2", None)], TS)),
        "coordinator_txn": bytes(coordinator_batch.build_batch([(b"key", b"value")], TS, 42, 3, 8)),
    }
    v1 = message(1, 0, b"a", b"x" * 10, timestamp=BASE_TS) + message(1, 0, None, b"y", timestamp=BASE_TS + 5, offset=1)
    out["legacy_v1"] = bytes(legacy.up_convert(memoryview(bytearray(v1)), LogConfig(), NOW))
    v0 = message(0, 0, b"a", b"x") + message(0, 0, b"b", None, offset=1)
    out["legacy_v0"] = bytes(legacy.up_convert(memoryview(bytearray(v0)), LogConfig(), NOW))
    # The cleaner rewrites batches already in a log: offsets and leader epoch assigned.
    marker = bytearray(out["marker_abort"])
    struct.pack_into(">qii", marker, 0, 100, len(marker) - rb.LOG_OVERHEAD, 4)
    stamped = cleaner._with_delete_horizon(memoryview(marker), native.batch_info(marker), TS + 86_400_000)
    assert stamped is not None
    out["delete_horizon"] = stamped
    compressed = bytearray(out["coordinator_txn"])  # the codec bit must go with the records
    struct.pack_into(">q", compressed, 0, 200)
    struct.pack_into(">h", compressed, rb.ATTRIBUTES_OFFSET, rb.ATTR_TRANSACTIONAL | 1)
    out["empty"] = cleaner._empty_batch(memoryview(compressed))
    templates = {"bench_stamped": BatchTemplate(40, 4), "bench_plain": BatchTemplate(40, 4, stamped=False),
                 "bench_gzip": BatchTemplate(40, 4, codec=1)}
    for name, template in templates.items():
        parts, size = template.build(3, 11, 22, now_ms=TS)
        out[name] = b"".join(bytes(part) for part in parts)
        assert len(out[name]) == size
    return out


# Written by each writer before the layout moved to pyk.log.record_batch (commit 607d0a5).
GOLDEN = {
    "marker_commit": bytes.fromhex(
        "000000000000000000000042ffffffff02c11c27820030000000000000018bcfe568000000018bcfe568000000000000"
        "0004d20005ffffffff000000012000000008000000010c00000000000700"
    ),
    "marker_abort": bytes.fromhex(
        "000000000000000000000042ffffffff02e154d53b0030000000000000018bcfe568010000018bcfe568010000000000"
        "0000630000ffffffff000000012000000008000000000c00000000000300"
    ),
    "coordinator": bytes.fromhex(
        "000000000000000000000043ffffffff02f45f9ddf0000000000010000018bcfe568000000018bcfe56800ffffffffff"
        "ffffffffffffffffff0000000210000000026b02760010000002046b320100"
    ),
    "coordinator_txn": bytes.fromhex(
        "000000000000000000000040ffffffff02cbfc5ccd0010000000000000018bcfe568000000018bcfe568000000000000"
        "00002a000300000008000000011c000000066b65790a76616c756500"
    ),
    "legacy_v1": bytes.fromhex(
        "00000000000000000000004bffffffff0245ae051a0000000000010000018bcfe568000000018bcfe56805ffffffffff"
        "ffffffffffffffffff000000022200000002611478787878787878787878000e000a0201027900"
    ),
    "legacy_v0": bytes.fromhex(
        "000000000000000000000042ffffffff02546faed9000000000001ffffffffffffffffffffffffffffffffffffffffff"
        "ffffffffffffffffff000000021000000002610278000e00000202620100"
    ),
    "delete_horizon": bytes.fromhex(
        "000000000000006400000045000000040212a7ff630070000000000000018bd50bc4000000018bcfe568010000000000"
        "0000630000ffffffff000000012600fdefb2520008000000000c00000000000300"
    ),
    "empty": bytes.fromhex(
        "00000000000000c800000031ffffffff0225c3d59d0010000000000000018bcfe568000000018bcfe568000000000000"
        "00002a00030000000800000000"
    ),
    "bench_stamped": bytes.fromhex(
        "0000000000000000000000beffffffff0225eb27d70000000000020000018bcfe568000000018bcfe56800ffffffffff"
        "ffffffffffffffffff000000035c0000000150000000000000000b00000000000000163036332c226c766c223a225741"
        "524e222c22737663223a22005c00000201507b227473223a313733323532383137393635372c226c766c223a22494e46"
        "4f222c22737663223a22005c00000401507b227473223a313733323533303730333934352c226c766c223a225741524e"
        "222c22737663223a2200"
    ),
    "bench_plain": bytes.fromhex(
        "0000000000000000000000beffffffff0221518aaf0000000000020000018bcfe568000000018bcfe56800ffffffffff"
        "ffffffffffffffffff000000035c00000001507b227473223a313733323531383033343036332c226c766c223a225741"
        "524e222c22737663223a22005c00000201507b227473223a313733323532383137393635372c226c766c223a22494e46"
        "4f222c22737663223a22005c00000401507b227473223a313733323533303730333934352c226c766c223a225741524e"
        "222c22737663223a2200"
    ),
    "bench_gzip": bytes.fromhex(
        "000000000000000000000097ffffffff024326f9190001000000020000018bcfe568000000018bcfe56800ffffffffff"
        "ffffffffffffffffff000000031f8b08000000000000038b616060600c6080006e282d666066aca3945396a364a514ee"
        "18e4a7a4a3545c960ce430c43030303106542b95142b59199a1b1b991a59189a5b9a999ac3947bfab9f9a3286741516e"
        "6c606e606c69628add7400b4da6ef18d000000"
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_writers_produce_the_same_bytes_as_before(name: str) -> None:
    written = _written()[name]
    assert written.hex() == GOLDEN[name].hex()
    assert DefaultRecordBatch(written).validate_crc()
