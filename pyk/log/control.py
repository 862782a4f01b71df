"""Control batches: the transaction markers (COMMIT / ABORT) the broker writes into a partition.

Owns the bytes of a marker batch (KIP-98; Kafka EndTransactionMarker.java, ControlRecordType.java,
MemoryRecords.withEndTransactionMarker), both building one and reading one back at recovery:

    RecordBatch => ... attributes:int16 (0x30: transactional | control, uncompressed)
                   lastOffsetDelta:int32 (=0) baseTimestamp = maxTimestamp = the write time
                   producerId:int64 producerEpoch:int16 baseSequence:int32 (=-1) recordsCount (=1)
    Record      => length:varint attributes:int8 timestampDelta:varlong offsetDelta:varint
                   keyLength:varint key valueLength:varint value headerCount:varint (=0)
    key   => version:int16 (=0) type:int16 (0 = ABORT, 1 = COMMIT)
    value => version:int16 (=0) coordinator_epoch:int32

Only the broker writes these (LogValidator rejects control batches from clients), always
uncompressed and with exactly this one record, which is what `read_marker` relies on.
"""

from __future__ import annotations

import struct

from pyk import _native
from pyk.log.record_batch import (
    ATTR_CONTROL,
    ATTR_TRANSACTIONAL,
    BATCH_HEADER_SIZE,
    BatchHeader,
    write_header,
)

ABORT, COMMIT = 0, 1  # ControlRecordType
_CONTROL_RECORD_VERSION = 0
_MARKER_VERSION = 0

_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


def _varint(value: int) -> bytes:
    return _native.encode_varint(value)


def build_marker(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                 timestamp_ms: int) -> bytearray:
    """One control batch holding an end-transaction marker; baseOffset 0 and leader epoch -1
    are rewritten when the log appends it (as for produced batches)."""
    key = _KEY.pack(_CONTROL_RECORD_VERSION, COMMIT if commit else ABORT)
    value = _VALUE.pack(_MARKER_VERSION, coordinator_epoch)
    body = (b"\x00" + _varint(0) + _varint(0) + _varint(len(key)) + key + _varint(len(value)) + value
            + _varint(0))
    record = _varint(len(body)) + body
    batch = bytearray(BATCH_HEADER_SIZE) + record
    write_header(batch, BatchHeader(ATTR_TRANSACTIONAL | ATTR_CONTROL, 0, timestamp_ms, timestamp_ms, 1,
                                    producer_id, producer_epoch))
    return batch


# A marker's size in the log (the bytes it makes readable to long-polling fetches).
MARKER_BYTES = len(build_marker(0, 0, True, 0, 0))


def read_marker(batch: bytes) -> tuple[bool, int]:
    """(commit, coordinator_epoch) of a whole control batch as stored in the log.

    Raises ValueError for a control batch that is not an end-transaction marker (Kafka defines
    no other control record a partition log carries)."""
    at = BATCH_HEADER_SIZE
    _length, at = _native.decode_varint(batch, at)
    at += 1  # record attributes
    _ts_delta, at = _native.decode_varint(batch, at)
    _offset_delta, at = _native.decode_varint(batch, at)
    key_length, at = _native.decode_varint(batch, at)
    if key_length < _KEY.size:
        raise ValueError(f"control record key of {key_length} bytes")
    _version, kind = _KEY.unpack_from(batch, at)
    at += key_length
    value_length, at = _native.decode_varint(batch, at)
    if kind not in (ABORT, COMMIT) or value_length < _VALUE.size:
        raise ValueError(f"control record of type {kind} with a {value_length}-byte value is not a marker")
    _version, coordinator_epoch = _VALUE.unpack_from(batch, at)
    return kind == COMMIT, coordinator_epoch
