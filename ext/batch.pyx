# Record batch v2 (magic 2): header view, produce-side validation, offset assignment and
# LogAppendTime rewrite, and segment scanning for recovery and fetch positioning.
#
# https://kafka.apache.org/documentation/#recordbatch (KIP-98)
#
#   RecordBatch =>
#     baseOffset: int64
#     batchLength: int32                 bytes after this field
#     partitionLeaderEpoch: int32
#     magic: int8                        (current magic value is 2)
#     crc: uint32                        CRC-32C of attributes..end
#     attributes: int16                  bit 0~2 compression, 3 timestampType, 4 isTransactional,
#                                        5 isControlBatch, 6 hasDeleteHorizonMs
#     lastOffsetDelta: int32
#     baseTimestamp: int64
#     maxTimestamp: int64
#     producerId: int64
#     producerEpoch: int16
#     baseSequence: int32
#     records: int32 count, then [Record]
#
# baseOffset and partitionLeaderEpoch sit before the CRC'd range precisely so the broker
# can stamp them without recomputing it.

from collections import namedtuple as _namedtuple

from libc.stdint cimport SIZE_MAX, int64_t
from cpython.exc cimport PyErr_SetFromErrno
from libc.errno cimport EINTR, errno
from libc.stdlib cimport free, realloc
from posix.unistd cimport pread

import array as _array

# Header fields of BatchInfo, in wire order (plus the derived ones); tests and tools use it
# to compare or print a header without naming every field.
BATCH_INFO_FIELDS = (
    "base_offset", "batch_length", "size", "partition_leader_epoch", "magic", "crc",
    "attributes", "compression", "timestamp_type", "is_transactional", "is_control",
    "last_offset_delta", "last_offset", "first_timestamp", "max_timestamp", "producer_id",
    "producer_epoch", "base_sequence", "records_count",
)

ScanResult = _namedtuple(
    "ScanResult", ["valid_bytes", "positions", "base_offsets", "last_offsets", "max_timestamps"])
ScanResult.__doc__ = """scan_batches() result: valid_bytes after `start`, then one int64
array('q') per column with a row per valid batch (no Python object per batch)."""

_INT64_ZERO = _array.array("q", [0])


cdef object batch_column(BatchScanEntry *entries, Py_ssize_t count, Py_ssize_t field):
    """array('q') holding field number `field` (0..3) of each entry."""
    cdef object column = _INT64_ZERO * count
    cdef Py_buffer view
    cdef int64_t *out
    cdef const int64_t *row
    cdef Py_ssize_t i
    buffer_acquire(column, &view, True)
    try:
        out = <int64_t *>view.buf
        for i in range(count):
            row = <const int64_t *>&entries[i]
            out[i] = row[field]
    finally:
        PyBuffer_Release(&view)
    return column


# Record batch header

cdef class BatchInfo:
    """The decoded header of one v2 record batch.

    An immutable copy: it holds no reference to the buffer it came from, so it may outlive
    a request frame or an mmap.  Build it with batch_info() / BatchInfo(buf, offset) from
    Python, BatchInfo.new(ptr) from Cython.
    """

    _fields = BATCH_INFO_FIELDS

    def __init__(self, buf, Py_ssize_t offset=0):
        cdef Py_buffer view
        buffer_acquire(buf, &view, False)
        try:
            batch_require_header(&view, offset)
            self._fill(<const uint8_t *>view.buf + offset)
        finally:
            PyBuffer_Release(&view)

    @staticmethod
    cdef BatchInfo new(const uint8_t *p):
        cdef BatchInfo info = BatchInfo.__new__(BatchInfo)
        info._fill(p)
        return info

    cdef void _fill(self, const uint8_t *p) noexcept:
        self.base_offset = hton_load_i64(p + BATCH_BASE_OFFSET_OFFSET)
        self.batch_length = hton_load_i32(p + BATCH_LENGTH_OFFSET)
        self.size = <int64_t>self.batch_length + BATCH_LOG_OVERHEAD
        self.partition_leader_epoch = hton_load_i32(p + BATCH_PARTITION_LEADER_EPOCH_OFFSET)
        self.magic = <int8_t>p[BATCH_MAGIC_OFFSET]
        self.crc = hton_load_u32(p + BATCH_CRC_OFFSET)
        self.attributes = hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET)
        self.compression = self.attributes & BATCH_ATTR_COMPRESSION_MASK
        self.timestamp_type = 1 if self.attributes & BATCH_ATTR_TIMESTAMP_TYPE else 0
        self.is_transactional = (self.attributes & BATCH_ATTR_TRANSACTIONAL) != 0
        self.is_control = (self.attributes & BATCH_ATTR_CONTROL) != 0
        self.last_offset_delta = hton_load_i32(p + BATCH_LAST_OFFSET_DELTA_OFFSET)
        self.last_offset = self.base_offset + self.last_offset_delta
        self.first_timestamp = hton_load_i64(p + BATCH_FIRST_TIMESTAMP_OFFSET)
        self.max_timestamp = hton_load_i64(p + BATCH_MAX_TIMESTAMP_OFFSET)
        self.producer_id = hton_load_i64(p + BATCH_PRODUCER_ID_OFFSET)
        self.producer_epoch = hton_load_i16(p + BATCH_PRODUCER_EPOCH_OFFSET)
        self.base_sequence = hton_load_i32(p + BATCH_BASE_SEQUENCE_OFFSET)
        self.records_count = hton_load_i32(p + BATCH_RECORDS_COUNT_OFFSET)

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in BATCH_INFO_FIELDS)
        return f"BatchInfo({fields})"


cdef int batch_require_header(Py_buffer *view, Py_ssize_t offset) except -1:
    if offset < 0 or offset > view.len:
        raise ValueError(f"offset {offset} outside a buffer of {view.len} bytes")
    if view.len - offset < BATCH_HEADER_SIZE:
        raise ValueError(
            f"record batch header needs {BATCH_HEADER_SIZE} bytes, {view.len - offset} remain")
    return 0


def batch_info(buf, Py_ssize_t offset=0):
    """Decode the v2 batch header at buf[offset:]; ValueError when fewer than 61 bytes."""
    cdef Py_buffer view
    buffer_acquire(buf, &view, False)
    try:
        batch_require_header(&view, offset)
        return BatchInfo.new(<const uint8_t *>view.buf + offset)
    finally:
        PyBuffer_Release(&view)


# Validation

cdef int64_t batch_check_complete(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    cdef int64_t size
    if n < BATCH_HEADER_SIZE:
        return 0
    size = batch_size(p)
    if size < BATCH_HEADER_SIZE or size > n:
        return 0
    if p[BATCH_MAGIC_OFFSET] != BATCH_MAGIC_V2:
        return 0
    if batch_compute_crc(p, size) != hton_load_u32(p + BATCH_CRC_OFFSET):
        return 0
    return size


cdef int batch_validate(const uint8_t *p, Py_ssize_t n, int64_t max_message_bytes) noexcept nogil:
    # The order follows Kafka's produce path: framing (ByteBufferLogInputStream), then
    # size (UnifiedLog.analyzeAndValidateRecords: RecordTooLargeException before
    # ensureValid), then CRC, then LogValidator's offset/count checks and record walk.
    cdef int64_t size
    cdef int32_t count, last_delta
    if n <= BATCH_MAGIC_OFFSET:
        return ERR_CORRUPT_MESSAGE
    if <int8_t>p[BATCH_MAGIC_OFFSET] != BATCH_MAGIC_V2:
        return ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT
    if n < BATCH_HEADER_SIZE:
        return ERR_CORRUPT_MESSAGE
    size = batch_size(p)
    if size < BATCH_HEADER_SIZE or size > n:
        return ERR_CORRUPT_MESSAGE
    if size < n:
        # Trailing bytes that begin like another v2 batch: a produce v3+ request may carry
        # exactly one batch per partition (Kafka: "Produce requests with version 3 are
        # only allowed to contain exactly one record batch").  Anything else is a length
        # that disagrees with the data.
        if n - size > BATCH_MAGIC_OFFSET and p[size + BATCH_MAGIC_OFFSET] == BATCH_MAGIC_V2:
            return ERR_INVALID_RECORD
        return ERR_CORRUPT_MESSAGE
    if size > max_message_bytes:
        return ERR_MESSAGE_TOO_LARGE
    if batch_compute_crc(p, size) != hton_load_u32(p + BATCH_CRC_OFFSET):
        return ERR_CORRUPT_MESSAGE
    # LogValidator.validateBatch: an empty offset range or a count that disagrees with it
    # (a produced batch always holds at least one record; compaction's empty batches never
    # come from a producer).
    count = hton_load_i32(p + BATCH_RECORDS_COUNT_OFFSET)
    last_delta = hton_load_i32(p + BATCH_LAST_OFFSET_DELTA_OFFSET)
    if count <= 0 or <int64_t>last_delta + 1 != count:
        return ERR_INVALID_RECORD
    if (hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_COMPRESSION_MASK) > CODEC_ZSTD:
        return ERR_INVALID_RECORD
    if (hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_COMPRESSION_MASK) == CODEC_NONE:
        return records_walk(p + BATCH_HEADER_SIZE, <Py_ssize_t>(size - BATCH_HEADER_SIZE), count)
    return ERR_NONE


def validate_batch(buf, int64_t max_message_bytes, bint deep=False, Py_ssize_t max_decompressed=-1):
    """Check a produce request's records field: exactly one complete v2 batch.

    Returns a Kafka error code: 0 ok; CORRUPT_MESSAGE (2) truncated, length mismatch or
    bad CRC; UNSUPPORTED_FOR_MESSAGE_FORMAT (43) magic != 2; MESSAGE_TOO_LARGE (10) batch
    larger than max_message_bytes; INVALID_RECORD (87) several batches, bad count /
    lastOffsetDelta, unknown codec, or records that do not frame exactly.  Compressed
    batches get header and CRC checks only, unless deep: then the records section is
    decompressed and its records walked too; CORRUPT_MESSAGE if it does not decompress,
    MESSAGE_TOO_LARGE if its output would exceed max_decompressed >= 0 bytes (a few KB of
    zstd can expand to GBs: decoding stops at the limit, having allocated no more than it).
    The limit is checked as the output grows, so a stream that is both damaged and too
    large may report either code.
    """
    cdef Py_buffer view
    cdef const uint8_t *p
    cdef int code, compression
    buffer_acquire(buf, &view, False)
    try:
        p = <const uint8_t *>view.buf
        if view.len > CRC32C_NOGIL_THRESHOLD:
            with nogil:
                code = batch_validate(p, view.len, max_message_bytes)
        else:
            code = batch_validate(p, view.len, max_message_bytes)
        if code != ERR_NONE or not deep:
            return code
        compression = hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_COMPRESSION_MASK
        if compression == CODEC_NONE:
            return code
        with nogil:
            code = batch_walk_compressed(p, view.len, compression, max_decompressed)
        if code == CODECS_ERR_NOMEM:
            raise MemoryError(f"no memory to decompress a record batch of {view.len} bytes")
        return code
    finally:
        PyBuffer_Release(&view)


cdef int batch_walk_compressed(const uint8_t *p, Py_ssize_t n, int compression,
                               Py_ssize_t max_decompressed) noexcept nogil:
    """Decompress the records section of the valid batch p[0:n] into this thread's scratch
    buffer (no allocation once it is warm) and walk its records: a Kafka error code
    (MESSAGE_TOO_LARGE for output past max_decompressed), or CODECS_ERR_NOMEM."""
    cdef codecs_buf *out = codecs_scratch()
    cdef int rc
    if out == NULL:
        return CODECS_ERR_NOMEM
    rc = codecs_decompress(compression, p + BATCH_HEADER_SIZE, <size_t>(n - BATCH_HEADER_SIZE),
                           SIZE_MAX if max_decompressed < 0 else <size_t>max_decompressed, out)
    if rc == CODECS_OK:
        rc = records_walk(out.data, <Py_ssize_t>out.len, hton_load_i32(p + BATCH_RECORDS_COUNT_OFFSET))
    elif rc == CODECS_ERR_TOO_LARGE:
        rc = ERR_MESSAGE_TOO_LARGE  # inflates past the limit (the caller tells it from max_message_bytes)
    elif rc != CODECS_ERR_NOMEM:
        rc = ERR_CORRUPT_MESSAGE  # does not decompress
    codecs_scratch_done()
    return rc


# Offset assignment

def assign_offsets(buf, int64_t base_offset, int32_t partition_leader_epoch,
                   int64_t log_append_time=-1):
    """Stamp baseOffset and partitionLeaderEpoch into the batch at the start of the
    writable buf, in place; return its last offset.

    Both fields lie outside the CRC, so the CRC stays valid.  With log_append_time >= 0
    (message.timestamp.type=LogAppendTime) also set the timestamp-type bit, write
    maxTimestamp and recompute the CRC, as Kafka's DefaultRecordBatch.setMaxTimestamp does;
    baseTimestamp and the records keep the producer's values, and consumers read
    maxTimestamp for every record of such a batch.
    """
    cdef Py_buffer view
    cdef uint8_t *p
    cdef int64_t size
    cdef int16_t attributes
    buffer_acquire(buf, &view, True)
    try:
        batch_require_header(&view, 0)
        p = <uint8_t *>view.buf
        if log_append_time >= 0:
            size = batch_size(p)
            if size < BATCH_HEADER_SIZE or size > view.len:
                raise ValueError(
                    f"LogAppendTime rewrite needs the whole batch: {size} bytes declared, "
                    f"{view.len} present")
            attributes = hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET) | BATCH_ATTR_TIMESTAMP_TYPE
            hton_store_i16(p + BATCH_ATTRIBUTES_OFFSET, attributes)
            hton_store_i64(p + BATCH_MAX_TIMESTAMP_OFFSET, log_append_time)
            if size > CRC32C_NOGIL_THRESHOLD:
                with nogil:
                    hton_store_u32(p + BATCH_CRC_OFFSET, batch_compute_crc(p, size))
            else:
                hton_store_u32(p + BATCH_CRC_OFFSET, batch_compute_crc(p, size))
        hton_store_i64(p + BATCH_BASE_OFFSET_OFFSET, base_offset)
        hton_store_i32(p + BATCH_PARTITION_LEADER_EPOCH_OFFSET, partition_leader_epoch)
        return base_offset + hton_load_i32(p + BATCH_LAST_OFFSET_DELTA_OFFSET)
    finally:
        PyBuffer_Release(&view)


# Segment scanning

cdef Py_ssize_t batch_scan(const uint8_t *p, Py_ssize_t n, Py_ssize_t start,
                           BatchScanEntry **entries, Py_ssize_t *count) noexcept nogil:
    cdef Py_ssize_t pos = start, capacity = 0
    cdef int64_t size
    cdef BatchScanEntry *grown
    cdef BatchScanEntry *row
    count[0] = 0
    while True:
        size = batch_check_complete(p + pos, n - pos)
        if size == 0:
            return pos
        if count[0] == capacity:
            capacity = capacity * 2 if capacity else 256
            grown = <BatchScanEntry *>realloc(entries[0], <size_t>capacity * sizeof(BatchScanEntry))
            if grown == NULL:
                return -1
            entries[0] = grown
        row = entries[0] + count[0]
        row.position = pos
        row.base_offset = hton_load_i64(p + pos + BATCH_BASE_OFFSET_OFFSET)
        row.last_offset = row.base_offset + hton_load_i32(p + pos + BATCH_LAST_OFFSET_DELTA_OFFSET)
        row.max_timestamp = hton_load_i64(p + pos + BATCH_MAX_TIMESTAMP_OFFSET)
        count[0] += 1
        pos += <Py_ssize_t>size


def scan_batches(buf, Py_ssize_t start=0):
    """Walk consecutive batches from buf[start:], checking each (sane size, magic 2, CRC),
    up to the first invalid or incomplete one.

    Returns ScanResult(valid_bytes, positions, base_offsets, last_offsets, max_timestamps):
    the bytes of valid batches after start, and one array('q') per column.  Recovery
    truncates the segment at start + valid_bytes and rebuilds its indexes from the arrays.
    """
    cdef Py_buffer view
    cdef BatchScanEntry *entries = NULL
    cdef Py_ssize_t count = 0, end
    buffer_acquire(buf, &view, False)
    try:
        if start < 0 or start > view.len:
            raise ValueError(f"start {start} outside a buffer of {view.len} bytes")
        if view.len - start > SCAN_NOGIL_THRESHOLD:
            with nogil:
                end = batch_scan(<const uint8_t *>view.buf, view.len, start, &entries, &count)
        else:
            end = batch_scan(<const uint8_t *>view.buf, view.len, start, &entries, &count)
        if end < 0:
            raise MemoryError("scan_batches: no memory for the batch table")
        return ScanResult(end - start, batch_column(entries, count, 0), batch_column(entries, count, 1),
                          batch_column(entries, count, 2), batch_column(entries, count, 3))
    finally:
        free(entries)
        PyBuffer_Release(&view)


cdef Py_ssize_t batch_find(const uint8_t *p, Py_ssize_t n, int64_t target,
                           Py_ssize_t *scanned) noexcept nogil:
    # Headers only, no CRC: this is the fetch path over data that recovery or the append
    # path already checked (Kafka's FileRecords.searchForOffsetWithSize does the same).
    cdef Py_ssize_t pos = 0
    cdef int64_t size
    while n - pos >= BATCH_HEADER_SIZE:
        size = batch_size(p + pos)
        if size < BATCH_HEADER_SIZE or size > n - pos or p[pos + BATCH_MAGIC_OFFSET] != BATCH_MAGIC_V2:
            break
        if (hton_load_i64(p + pos + BATCH_BASE_OFFSET_OFFSET)
                + hton_load_i32(p + pos + BATCH_LAST_OFFSET_DELTA_OFFSET)) >= target:
            scanned[0] = pos
            return pos
        pos += <Py_ssize_t>size
    scanned[0] = pos
    return -1


def find_batch(buf, int64_t target_offset):
    """Position of the first complete batch in buf whose last offset >= target_offset.

    Returns (position, scanned): position is -1 when no complete batch qualifies; scanned
    is where the walk stopped (the found batch, or the first incomplete / insane one, or
    len(buf)), so a caller reading a window of a segment knows where to continue.
    """
    cdef Py_buffer view
    cdef Py_ssize_t position, scanned = 0
    buffer_acquire(buf, &view, False)
    try:
        position = batch_find(<const uint8_t *>view.buf, view.len, target_offset, &scanned)
    finally:
        PyBuffer_Release(&view)
    return position, scanned


cdef Py_ssize_t segment_pread(int fd, uint8_t *buf, Py_ssize_t n, int64_t position) except -1:
    """pread of up to n bytes without the GIL (a page-cache miss blocks on the disk); the
    bytes read (fewer at the end of the file); OSError on failure."""
    cdef Py_ssize_t got
    while True:
        with nogil:
            got = pread(fd, buf, <size_t>n, position)
        if got >= 0:
            return got
        if errno != EINTR:
            PyErr_SetFromErrno(OSError)
            return -1


cdef tuple segment_batch_position(const uint8_t *header, int64_t position):
    """(position, size, base offset, last offset) of the batch whose header is at `header`."""
    cdef int64_t base = hton_load_i64(header + BATCH_BASE_OFFSET_OFFSET)
    return (position, batch_size(header), base, base + hton_load_i32(header + BATCH_LAST_OFFSET_DELTA_OFFSET))


def segment_find_batch(int fd, int64_t position, int64_t end, int64_t target_offset):
    """(position, size, base offset, last offset) of the first batch of the segment file `fd`
    at or after `position` (and starting before `end`, the segment's size) whose last offset
    is >= target_offset, or None.  LogSegment.translate_offset's walk in C: batch headers are
    searched in SEGMENT_FIND_WINDOW windows read into a stack buffer, so a fetch allocates
    nothing for them; a batch larger than the window is judged and skipped by its header."""
    cdef uint8_t window[SEGMENT_FIND_WINDOW]
    cdef Py_ssize_t got, found, scanned = 0
    cdef int64_t size
    while position + BATCH_HEADER_SIZE <= end:
        got = segment_pread(fd, window, <Py_ssize_t>min(<int64_t>SEGMENT_FIND_WINDOW, end - position),
                            position)
        found = batch_find(window, got, target_offset, &scanned)
        if found >= 0:  # a whole batch inside the window
            return segment_batch_position(window + found, position + found)
        if scanned > 0:
            # find_batch stops before a batch that does not fit the window: re-read from it.
            position += scanned
            continue
        if got < BATCH_HEADER_SIZE:
            return None
        size = batch_size(window)
        if size < BATCH_HEADER_SIZE:
            return None
        if (hton_load_i64(window + BATCH_BASE_OFFSET_OFFSET)
                + hton_load_i32(window + BATCH_LAST_OFFSET_DELTA_OFFSET)) >= target_offset:
            return segment_batch_position(window, position)
        position += size
    return None
