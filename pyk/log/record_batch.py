"""The RecordBatch v2 layout: the one place Python code learns where a batch header's fields are.

Owns Kafka's DefaultRecordBatch header (KIP-98, https://kafka.apache.org/documentation/#recordbatch)
as the log, the cleaner, control markers, the coordinators, legacy up-conversion and the bench
read and write it: field offsets and sizes, attribute bits, precompiled readers for the fields
read outside pyk._native, and the one header writer, which also recomputes the CRC.

    offset  field                  type     note
         0  baseOffset             int64    assigned by the log; outside the CRC
         8  batchLength            int32    bytes after this field (LOG_OVERHEAD = 12 precede them)
        12  partitionLeaderEpoch   int32    assigned by the log; outside the CRC
        16  magic                  int8     2 (the magic of a v0/v1 message sits at 16 too)
        17  crc                    uint32   CRC-32C of attributes .. end of batch
        21  attributes             int16    bits 0-2 codec, 3 timestamp type, 4 transactional,
                                            5 control, 6 delete horizon (KIP-534)
        23  lastOffsetDelta        int32
        27  baseTimestamp          int64    the delete horizon when bit 6 is set
        35  maxTimestamp           int64
        43  producerId             int64
        51  producerEpoch          int16
        53  baseSequence           int32
        57  recordsCount           int32
        61  records                         compressed as one block when the codec is not 0

The numbers mirror ext/consts.pxi, the native side's copy (pyk._native.BATCH_LAYOUT);
tests/unit/test_record_batch.py asserts that each constant here equals its native twin.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, NamedTuple

from pyk import _native

if TYPE_CHECKING:
    from typing_extensions import Buffer

BASE_OFFSET_OFFSET = 0
LENGTH_OFFSET = 8
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21  # the CRC covers everything from here on
LAST_OFFSET_DELTA_OFFSET = 23
BASE_TIMESTAMP_OFFSET = 27
MAX_TIMESTAMP_OFFSET = 35
PRODUCER_ID_OFFSET = 43
PRODUCER_EPOCH_OFFSET = 51
BASE_SEQUENCE_OFFSET = 53
RECORDS_COUNT_OFFSET = 57
BATCH_HEADER_SIZE = 61  # Kafka RECORD_BATCH_OVERHEAD: the records start here
LOG_OVERHEAD = 12  # baseOffset + batchLength: the part of a batch not counted in batchLength
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD  # batchLength of a batch without records
MAGIC = 2

ATTR_COMPRESSION_MASK = 0x07  # bits 0-2: the codec id (pyk._native.compress)
ATTR_TIMESTAMP_TYPE = 0x08  # set: LogAppendTime, clear: CreateTime
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40  # baseTimestamp holds the delete horizon (KIP-534)

NO_PARTITION_LEADER_EPOCH = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1

# The whole header, baseOffset .. recordsCount, in wire order.
HEADER = struct.Struct(">qiibIhiqqqhii")
_CRC = struct.Struct(">I")


def _reader(offset: int, fmt: str) -> struct.Struct:
    """A Struct whose unpack_from(buf, pos) reads `fmt` at `offset` into the batch at `pos`.

    Read only: its leading pad bytes would write zeros over the header in pack_into."""
    return struct.Struct(f">{offset}x{fmt}")


# Readers of the fields the Python side reads, each from the start of a batch (or its header).
READ_OFFSET_LENGTH = struct.Struct(">qi")  # baseOffset, batchLength
READ_LENGTH = _reader(LENGTH_OFFSET, "i")
READ_LEADER_EPOCH = _reader(PARTITION_LEADER_EPOCH_OFFSET, "i")
READ_ATTRIBUTES = _reader(ATTRIBUTES_OFFSET, "h")
READ_LAST_OFFSET_DELTA = _reader(LAST_OFFSET_DELTA_OFFSET, "i")
READ_BASE_TIMESTAMP = _reader(BASE_TIMESTAMP_OFFSET, "q")
READ_MAX_TIMESTAMP = _reader(MAX_TIMESTAMP_OFFSET, "q")
READ_PRODUCER = _reader(PRODUCER_ID_OFFSET, "qhi")  # producerId, producerEpoch, baseSequence
READ_RECORDS_COUNT = _reader(RECORDS_COUNT_OFFSET, "i")


class BatchHeader(NamedTuple):
    """The header fields a writer chooses; batchLength, magic and crc follow from the bytes.

    The defaults are those of a batch before the log appends it (baseOffset 0, no leader epoch)
    and without a producer (no idempotence)."""

    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    records_count: int
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    base_sequence: int = NO_SEQUENCE
    base_offset: int = 0
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH


def read_header(batch: Buffer, position: int = 0) -> BatchHeader:
    """The writer's fields of the batch at `position`, to rewrite some of them with write_header."""
    (base_offset, _length, leader_epoch, _magic, _crc, attributes, last_offset_delta, base_timestamp,
     max_timestamp, producer_id, producer_epoch, base_sequence, records_count) = HEADER.unpack_from(batch, position)
    return BatchHeader(attributes, last_offset_delta, base_timestamp, max_timestamp, records_count, producer_id,
                       producer_epoch, base_sequence, base_offset, leader_epoch)


def write_header(batch: bytearray, header: BatchHeader, tail: Buffer = b"") -> None:
    """Writes `header` over the first BATCH_HEADER_SIZE bytes of `batch`, with batchLength and
    the CRC of what follows: the rest of `batch`, then `tail`.

    Every Python writer of batches ends here, so none recomputes the CRC by hand.  `tail` lets a
    batch be sent as two parts without joining them (the bench's record templates); the CRC
    then runs on over it, and the caller must send exactly `batch` followed by `tail`."""
    tail_size = memoryview(tail).nbytes
    HEADER.pack_into(batch, 0, header.base_offset, len(batch) + tail_size - LOG_OVERHEAD,
                     header.partition_leader_epoch, MAGIC, 0, header.attributes, header.last_offset_delta,
                     header.base_timestamp, header.max_timestamp, header.producer_id, header.producer_epoch,
                     header.base_sequence, header.records_count)
    with memoryview(batch) as view:
        crc = _native.crc32c(view[ATTRIBUTES_OFFSET:])
    if tail_size:
        crc = _native.crc32c(tail, crc)
    _CRC.pack_into(batch, CRC_OFFSET, crc)
