"""A small pure-Python record batch v2 builder for tests and benchmarks.

Writes what a Kafka producer writes (DefaultRecordBatch / DefaultRecord): baseTimestamp is
the first record's timestamp, maxTimestamp the largest, offset deltas 0..n-1, CRC-32C over
attributes..end.  Not part of pyk._native's twin set: the broker never builds batches from
records except through recompression.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.ref.compress import compress
from tests.ref.crc32c import crc32c
from tests.ref.varint import encode_varint

_HEADER = struct.Struct(">qiibIhiqqqhii")


@dataclass(frozen=True)
class Record:
    """One record to write; timestamp None means "same as the batch's base timestamp"."""

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[bytes, bytes | None]] = field(default_factory=tuple)
    timestamp: int | None = None


def _sized(data: bytes | None) -> bytes:
    if data is None:
        return encode_varint(-1)
    return encode_varint(len(data)) + data


def encode_record(record: Record, offset_delta: int, timestamp_delta: int) -> bytes:
    body = bytearray(b"\x00")  # attributes: unused
    body += encode_varint(timestamp_delta)
    body += encode_varint(offset_delta)
    body += _sized(record.key)
    body += _sized(record.value)
    body += encode_varint(len(record.headers))
    for key, value in record.headers:
        body += _sized(key)
        body += _sized(value)
    return encode_varint(len(body)) + bytes(body)


def encode_records(records: Sequence[Record], base_timestamp: int) -> bytes:
    """The records section (after the count) for records at offset deltas 0..n-1."""
    return b"".join(
        encode_record(r, i, (base_timestamp if r.timestamp is None else r.timestamp) - base_timestamp)
        for i, r in enumerate(records))


def build_header(*, base_offset: int, records_size: int, partition_leader_epoch: int,
                 attributes: int, last_offset_delta: int, base_timestamp: int, max_timestamp: int,
                 producer_id: int, producer_epoch: int, base_sequence: int, count: int,
                 records_section: bytes) -> bytearray:
    """Header + records_section with the CRC filled in."""
    batch = bytearray(_HEADER.pack(
        base_offset, 49 + records_size, partition_leader_epoch, 2, 0, attributes,
        last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch,
        base_sequence, count))
    batch += records_section
    struct.pack_into(">I", batch, 17, crc32c(batch[21:]))
    return batch


def build_batch(records: Sequence[Record], *, base_offset: int = 0, partition_leader_epoch: int = -1,
                compression: int = 0, log_append_time: bool = False, transactional: bool = False,
                control: bool = False, producer_id: int = -1, producer_epoch: int = -1,
                base_sequence: int = -1, base_timestamp: int = 1_700_000_000_000) -> bytearray:
    """A complete v2 batch holding records (compressed with `compression`, 0..4)."""
    timestamps = [base_timestamp if r.timestamp is None else r.timestamp for r in records]
    first = timestamps[0] if timestamps else base_timestamp
    section = encode_records(records, first)
    if compression:
        section = compress(compression, section)
    attributes = (compression | (0x08 if log_append_time else 0) | (0x10 if transactional else 0)
                  | (0x20 if control else 0))
    return build_header(
        base_offset=base_offset, records_size=len(section), partition_leader_epoch=partition_leader_epoch,
        attributes=attributes, last_offset_delta=max(len(records) - 1, 0), base_timestamp=first,
        max_timestamp=max(timestamps, default=first), producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence, count=len(records),
        records_section=section)
