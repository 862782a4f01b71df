"""Reference record batch v2 functions: batch_info, validate_batch, assign_offsets,
scan_batches, find_batch (see ext/batch.pyx for the format and the rules)."""

from __future__ import annotations

import os
import struct
from array import array
from collections import namedtuple

from tests.ref._ints import byte_view, int32, int64, ssize, wrap64
from tests.ref.compress import decompress
from tests.ref.crc32c import crc32c
from tests.ref.records import records_walk

HEADER = struct.Struct(">qiibIhiqqqhii")  # baseOffset .. recordsCount, 61 bytes
HEADER_SIZE = 61
LOG_OVERHEAD = 12
CRC_START = 21

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_MESSAGE_TOO_LARGE = 10
ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
ERR_INVALID_RECORD = 87

BATCH_INFO_FIELDS = (
    "base_offset", "batch_length", "size", "partition_leader_epoch", "magic", "crc",
    "attributes", "compression", "timestamp_type", "is_transactional", "is_control",
    "last_offset_delta", "last_offset", "first_timestamp", "max_timestamp", "producer_id",
    "producer_epoch", "base_sequence", "records_count",
)

ScanResult = namedtuple(
    "ScanResult", ["valid_bytes", "positions", "base_offsets", "last_offsets", "max_timestamps"])


def _require_header(data: memoryview, offset: int) -> None:
    if offset < 0 or offset > len(data):
        raise ValueError(f"offset {offset} outside a buffer of {len(data)} bytes")
    if len(data) - offset < HEADER_SIZE:
        raise ValueError(f"record batch header needs {HEADER_SIZE} bytes, {len(data) - offset} remain")


class BatchInfo:
    _fields = BATCH_INFO_FIELDS

    def __init__(self, buf: object, offset: int = 0) -> None:
        offset = ssize(offset)
        data = byte_view(buf)
        _require_header(data, offset)
        (self.base_offset, self.batch_length, self.partition_leader_epoch, self.magic, self.crc,
         self.attributes, self.last_offset_delta, self.first_timestamp, self.max_timestamp,
         self.producer_id, self.producer_epoch, self.base_sequence,
         self.records_count) = HEADER.unpack_from(data, offset)
        self.size = self.batch_length + LOG_OVERHEAD
        self.compression = self.attributes & 7
        self.timestamp_type = (self.attributes >> 3) & 1
        self.is_transactional = bool(self.attributes & 0x10)
        self.is_control = bool(self.attributes & 0x20)
        # int64 arithmetic, wrapping like the C (and Java) code
        self.last_offset = wrap64(self.base_offset + self.last_offset_delta)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in BATCH_INFO_FIELDS)
        return f"BatchInfo({fields})"


def batch_info(buf: object, offset: int = 0) -> BatchInfo:
    return BatchInfo(buf, offset)


def _crc_ok(data: memoryview, pos: int, size: int) -> bool:
    (stored,) = struct.unpack_from(">I", data, pos + 17)
    return crc32c(data[pos + CRC_START:pos + size]) == stored


def _validate(data: memoryview, max_message_bytes: int) -> int:
    n = len(data)
    if n <= 16:
        return ERR_CORRUPT_MESSAGE
    if data[16] != 2:
        return ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
    if n < HEADER_SIZE:
        return ERR_CORRUPT_MESSAGE
    info = BatchInfo(data)
    size = info.size
    if size < HEADER_SIZE or size > n:
        return ERR_CORRUPT_MESSAGE
    if size < n:
        if n - size > 16 and data[size + 16] == 2:
            return ERR_INVALID_RECORD
        return ERR_CORRUPT_MESSAGE
    if size > max_message_bytes:
        return ERR_MESSAGE_TOO_LARGE
    if not _crc_ok(data, 0, size):
        return ERR_CORRUPT_MESSAGE
    if info.records_count <= 0 or info.last_offset_delta + 1 != info.records_count:
        return ERR_INVALID_RECORD
    if info.compression > 4:
        return ERR_INVALID_RECORD
    if info.compression == 0:
        return records_walk(data[HEADER_SIZE:size], info.records_count)
    return ERR_NONE


def validate_batch(buf: object, max_message_bytes: int, deep: bool = False, max_decompressed: int = -1) -> int:
    max_message_bytes = int64(max_message_bytes)
    data = byte_view(buf)
    code = _validate(data, max_message_bytes)
    if code or not deep:
        return code
    info = BatchInfo(data)
    if info.compression == 0:
        return code
    try:
        records = decompress(info.compression, data[HEADER_SIZE:info.size])
    except ValueError:
        return ERR_CORRUPT_MESSAGE
    if 0 <= ssize(max_decompressed) < len(records):
        return ERR_MESSAGE_TOO_LARGE
    return records_walk(memoryview(records), info.records_count)


def assign_offsets(buf: object, base_offset: int, partition_leader_epoch: int,
                   log_append_time: int = -1) -> int:
    base_offset, partition_leader_epoch = int64(base_offset), int32(partition_leader_epoch)
    log_append_time = int64(log_append_time)
    data = byte_view(buf, writable=True)
    _require_header(data, 0)
    if log_append_time >= 0:
        (length,) = struct.unpack_from(">i", data, 8)
        size = length + LOG_OVERHEAD
        if size < HEADER_SIZE or size > len(data):
            raise ValueError(
                f"LogAppendTime rewrite needs the whole batch: {size} bytes declared, {len(data)} present")
        (attributes,) = struct.unpack_from(">h", data, 21)
        struct.pack_into(">h", data, 21, attributes | 0x08)
        struct.pack_into(">q", data, 35, log_append_time)
        struct.pack_into(">I", data, 17, crc32c(data[CRC_START:size]))
    struct.pack_into(">q", data, 0, base_offset)
    struct.pack_into(">i", data, 12, partition_leader_epoch)
    (last_delta,) = struct.unpack_from(">i", data, 23)
    return wrap64(base_offset + last_delta)


def _complete_size(data: memoryview, pos: int) -> int:
    """Size of the complete, sane, CRC-valid batch at pos, else 0."""
    if len(data) - pos < HEADER_SIZE:
        return 0
    (length,) = struct.unpack_from(">i", data, pos + 8)
    size = length + LOG_OVERHEAD
    if size < HEADER_SIZE or size > len(data) - pos or data[pos + 16] != 2:
        return 0
    return size if _crc_ok(data, pos, size) else 0


def scan_batches(buf: object, start: int = 0) -> ScanResult:
    start = ssize(start)
    data = byte_view(buf)
    if start < 0 or start > len(data):
        raise ValueError(f"start {start} outside a buffer of {len(data)} bytes")
    columns: list[array] = [array("q") for _ in range(4)]
    pos = start
    while size := _complete_size(data, pos):
        info = BatchInfo(data, pos)
        for column, value in zip(columns, (pos, info.base_offset, info.last_offset, info.max_timestamp), strict=True):
            column.append(value)
        pos += size
    return ScanResult(pos - start, *columns)


def find_batch(buf: object, target_offset: int) -> tuple[int, int]:
    target_offset = int64(target_offset)
    data = byte_view(buf)
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        info = BatchInfo(data, pos)
        if info.size < HEADER_SIZE or info.size > len(data) - pos or info.magic != 2:
            break
        if info.last_offset >= target_offset:
            return pos, pos
        pos += info.size
    return -1, pos


SEGMENT_FIND_WINDOW = 8192


def segment_find_batch(fd: int, position: int, end: int, target_offset: int) -> tuple[int, int, int, int] | None:
    """Twin of pyk._native.segment_find_batch: windows read with os.pread, searched with
    find_batch; a batch larger than the window judged by its header."""
    while position + HEADER_SIZE <= end:
        window = os.pread(fd, min(SEGMENT_FIND_WINDOW, end - position), position)
        found, scanned = find_batch(window, target_offset)
        if found < 0 and scanned > 0:
            position += scanned
            continue
        at = max(found, 0)
        if len(window) - at < HEADER_SIZE:
            return None
        base, length = struct.unpack_from(">qi", window, at)
        last = base + struct.unpack_from(">i", window, at + 23)[0]
        size = length + 12
        if found >= 0:
            return position + found, size, base, last
        if size < HEADER_SIZE:
            return None
        if last >= target_offset:
            return position, size, base, last
        position += size
    return None
