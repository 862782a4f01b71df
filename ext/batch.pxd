# Record batch v2: header view, validation, offset assignment, segment scanning.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t


cdef class BatchInfo:
    # The decoded 61-byte header of one v2 batch (a copy: it keeps no reference to the
    # buffer).  Field names follow DefaultRecordBatch's accessors in snake_case.
    cdef readonly int64_t base_offset             # offset of the first record
    cdef readonly int32_t batch_length            # bytes after the batchLength field
    cdef readonly int64_t size                    # whole batch on the wire: batch_length + 12
    cdef readonly int32_t partition_leader_epoch  # leader epoch stamped by the broker
    cdef readonly int8_t magic                    # format version, 2 here
    cdef readonly uint32_t crc                    # stored CRC-32C of attributes..end
    cdef readonly int16_t attributes              # raw attributes
    cdef readonly int compression                 # attributes & 7: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
    cdef readonly int timestamp_type              # attributes bit 3: 0 CreateTime, 1 LogAppendTime
    cdef readonly bint is_transactional           # attributes bit 4
    cdef readonly bint is_control                 # attributes bit 5: transaction markers
    cdef readonly int32_t last_offset_delta       # last offset - base offset
    cdef readonly int64_t last_offset             # base_offset + last_offset_delta
    cdef readonly int64_t first_timestamp         # baseTimestamp: first record's timestamp
    cdef readonly int64_t max_timestamp           # largest record timestamp (or log append time)
    cdef readonly int64_t producer_id             # -1 without idempotence
    cdef readonly int16_t producer_epoch          # -1 without idempotence
    cdef readonly int32_t base_sequence           # first record's sequence number, or -1
    cdef readonly int32_t records_count           # number of records claimed by the header

    cdef void _fill(self, const uint8_t *p) noexcept

    # C callers: decode the header at p (61 readable bytes, checked by the caller).
    @staticmethod
    cdef BatchInfo new(const uint8_t *p)


# One row of scan_batches' result, collected in C before being split into arrays.
ctypedef struct BatchScanEntry:
    int64_t position                              # byte position of the batch in the buffer
    int64_t base_offset                           # first offset
    int64_t last_offset                           # base offset + lastOffsetDelta
    int64_t max_timestamp                         # maxTimestamp field


cdef inline int64_t batch_size(const uint8_t *p) noexcept nogil:
    """Whole size of the batch at p (batchLength + 12); needs 12 readable bytes."""
    return <int64_t>hton_load_i32(p + BATCH_LENGTH_OFFSET) + BATCH_LOG_OVERHEAD


cdef inline uint32_t batch_compute_crc(const uint8_t *p, int64_t size) noexcept nogil:
    """CRC-32C of attributes..end of a batch of `size` bytes at p."""
    return crc32c_value(0, p + BATCH_ATTRIBUTES_OFFSET, <size_t>(size - BATCH_ATTRIBUTES_OFFSET))


# Size of the complete, sane, CRC-valid v2 batch at p[0:n], or 0 when there is none.
cdef int64_t batch_check_complete(const uint8_t *p, Py_ssize_t n) noexcept nogil
# validate_batch without the deep codec pass: a Kafka error code.
cdef int batch_validate(const uint8_t *p, Py_ssize_t n, int64_t max_message_bytes) noexcept nogil
# Walk batches in p[start:n] into a malloc'd table; return the end of the last valid one,
# or -1 when memory ran out (*entries then still needs free()).
cdef Py_ssize_t batch_scan(const uint8_t *p, Py_ssize_t n, Py_ssize_t start,
                           BatchScanEntry **entries, Py_ssize_t *count) noexcept nogil
# Position of the first complete batch in p[0:n] whose last offset >= target, or -1;
# *scanned is where the walk stopped.
cdef Py_ssize_t batch_find(const uint8_t *p, Py_ssize_t n, int64_t target,
                           Py_ssize_t *scanned) noexcept nogil

# Window read per pread by segment_find_batch (the fetch path's search from an index position):
# the gap between two index entries is about index.interval.bytes (4 KiB by default) plus one
# batch, so one window usually holds the whole walk.  On the C stack: no buffer per fetch.
cdef enum:
    SEGMENT_FIND_WINDOW = 8192

# ValueError unless view holds a 61-byte header at offset.
cdef int batch_require_header(Py_buffer *view, Py_ssize_t offset) except -1
# array('q') of field `field` (0..3, in BatchScanEntry order) of count entries.
cdef object batch_column(BatchScanEntry *entries, Py_ssize_t count, Py_ssize_t field)
