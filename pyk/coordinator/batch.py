"""Record batches of `__consumer_offsets`: building the coordinator's own, reading them back.

The coordinators are the only writers of their topics, and they write what a Kafka broker writes
there (KIP-98 record batch v2, one batch per append, uncompressed; no producer id, except the
offsets of a TxnOffsetCommit, which are a transactional batch of the committing producer):

    RecordBatch => header (pyk.log.record_batch) records:[Record]
    Record => length:varint attributes:int8 timestampDelta:varlong offsetDelta:varint
              keyLength:varint key:byte[] valueLength:varint value:byte[] (-1: null, a tombstone)
              headerCount:varint [headerKeyLength:varint headerKey headerValueLength:varint headerValue]

Reading (start-up load) accepts any batch the log may hold: compressed ones (decompressed with
pyk._native) and control batches, whose single record says whether the producer's transaction
committed or aborted:

    ControlRecordKey => version:int16 type:int16 (0 abort, 1 commit)

The log validated every batch's CRC when it was appended or recovered, so it is not checked
again here.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyk import _native
from pyk.errors import ProtocolViolation
from pyk.log.record_batch import (
    ATTR_COMPRESSION_MASK,
    ATTR_CONTROL,
    ATTR_TRANSACTIONAL,
    BATCH_HEADER_SIZE,
    HEADER,
    LOG_OVERHEAD,
    MAGIC,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    BatchHeader,
    write_header,
)
from pyk.protocol import primitives as p

_CONTROL_COMMIT = 1
# Bytes per read while replaying a log: large enough to take many batches per pread.
_LOAD_READ_BYTES = 4 * 1024 * 1024


def build_batch(records: Sequence[tuple[bytes, bytes | None]], timestamp_ms: int, producer_id: int = NO_PRODUCER_ID,
                producer_epoch: int = NO_PRODUCER_EPOCH, base_sequence: int = NO_SEQUENCE) -> bytearray:
    """One uncompressed v2 batch of (key, value) records, all stamped `timestamp_ms`; with a
    producer id it is a transactional batch of that producer (TxnOffsetCommit).

    baseOffset and partitionLeaderEpoch are left 0 and -1: PartitionLog.append assigns both.
    Returned as a bytearray because the log rewrites those header fields in place.
    """
    if not records:
        raise ValueError("a record batch needs at least one record")
    batch = bytearray(BATCH_HEADER_SIZE)  # the header is written last
    for delta, (key, value) in enumerate(records):
        rec = bytearray(b"\x00")  # record attributes: unused in v2
        rec += p.encode_varlong(0)  # timestampDelta: every record has the batch timestamp
        rec += p.encode_varint(delta)
        rec += p.encode_varint(len(key))
        rec += key
        if value is None:
            rec += p.encode_varint(-1)
        else:
            rec += p.encode_varint(len(value))
            rec += value
        rec += p.encode_varint(0)  # no headers
        batch += p.encode_varint(len(rec))
        batch += rec
    write_header(batch, BatchHeader(ATTR_TRANSACTIONAL if producer_id >= 0 else 0, len(records) - 1, timestamp_ms,
                                   timestamp_ms, len(records), producer_id, producer_epoch, base_sequence))
    return batch


@dataclass(slots=True)
class Batch:
    """One batch read back: its producer, its kind and its data records (offset, key, value).

    `commit` is set on a control batch only: True for a commit marker, False for an abort."""

    producer_id: int
    transactional: bool
    commit: bool | None
    records: list[tuple[int, bytes | None, bytes | None]]


def read_batches(data: bytes | memoryview) -> tuple[list[Batch], int]:
    """The complete batches at the start of `data`, and the offset following the last of them
    (-1 when there is none).

    A partial batch at the end (a log read cut at its byte limit) is left for the next read.
    """
    view = memoryview(data)
    out: list[Batch] = []
    next_offset = -1
    pos = 0
    while pos + BATCH_HEADER_SIZE <= len(view):
        (base_offset, batch_length, _epoch, magic, _crc, attributes, last_delta, _base_ts, _max_ts,
         pid, _pepoch, _seq, count) = HEADER.unpack_from(view, pos)  # fmt: skip
        end = pos + LOG_OVERHEAD + batch_length
        if end > len(view):
            break
        if magic != MAGIC:
            raise ProtocolViolation(f"record batch at offset {base_offset} has magic {magic}, expected {MAGIC}")
        section = view[pos + BATCH_HEADER_SIZE : end]
        codec = attributes & ATTR_COMPRESSION_MASK
        if codec:
            section = memoryview(_native.decompress(codec, section))
        records = list(_records(section, base_offset, count))
        commit = None
        if attributes & ATTR_CONTROL:
            key = records[0][1] if records else None
            if key is None or len(key) < 4:
                raise ProtocolViolation(f"control batch at offset {base_offset} without a control record key")
            commit = struct.unpack_from(">h", key, 2)[0] == _CONTROL_COMMIT
            records = []
        out.append(Batch(pid, bool(attributes & ATTR_TRANSACTIONAL), commit, records))
        next_offset = base_offset + last_delta + 1
        pos = end
    return out, next_offset


def decode_batches(data: bytes | memoryview) -> tuple[list[tuple[int, bytes | None, bytes | None]], int]:
    """(offset, key, value) of every data record in the complete batches at the start of `data`,
    and the offset following the last complete batch (-1 when there is none)."""
    batches, next_offset = read_batches(data)
    return [rec for batch in batches for rec in batch.records], next_offset


def replay(plog: Any, what: str) -> Iterator[Batch]:
    """Every batch of a local log from its start offset to its end, in offset order (the
    coordinators' load).  To the log end, not the high watermark: a newly elected leader keeps
    its whole log, while its high watermark catches up only as its followers fetch again.
    `what` names the partition in errors."""
    offset = plog.log_start_offset
    end = plog.log_end_offset
    while offset < end:
        data = plog.read(offset, _LOAD_READ_BYTES, min_one_message=True, to_log_end=True)
        if data.records is None or data.records.size == 0:
            break
        chunk = os.pread(data.records.fd, data.records.size, data.records.position)
        batches, next_offset = read_batches(chunk)
        if next_offset <= offset:
            raise AssertionError(f"{what}: no progress reading at offset {offset}")
        yield from batches
        offset = next_offset


def _records(section: memoryview, base_offset: int, count: int) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    pos = 0
    for _ in range(count):
        length, pos = p.read_varint(section, pos)
        end = pos + length
        if end > len(section):
            raise ProtocolViolation(f"record of {length} bytes overruns its batch at offset {base_offset}")
        at = pos + 1  # record attributes
        _ts_delta, at = p.read_varlong(section, at)
        offset_delta, at = p.read_varint(section, at)
        key, at = _read_nullable(section, at)
        value, at = _read_nullable(section, at)
        yield base_offset + offset_delta, key, value
        pos = end  # headers are skipped with the record's length


def _read_nullable(section: memoryview, pos: int) -> tuple[bytes | None, int]:
    length, pos = p.read_varint(section, pos)
    if length < 0:
        return None, pos
    if pos + length > len(section):
        raise ProtocolViolation(f"record field of {length} bytes overruns its record")
    return bytes(section[pos : pos + length]), pos + length
