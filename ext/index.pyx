# Index search over Kafka's index files (big-endian, mmap'd by pyk.log.index):
#
#   OffsetIndex entry (.index, 8 bytes) =>
#     relativeOffset: int32          offset - segment base offset
#     position: int32                byte position of the batch in the .log file
#
#   TimeIndex entry (.timeindex, 12 bytes) =>
#     timestamp: int64               max timestamp seen so far in the segment
#     relativeOffset: int32          offset of the batch that first reached it
#
# Both are sorted by their key, so one search serves both; the file is preallocated, so
# the caller passes how many entries are real.


cdef Py_ssize_t idx_lookup(const uint8_t *p, Py_ssize_t n, Py_ssize_t entry_size,
                           int64_t target) noexcept nogil:
    # Find the first slot whose key > target in [lo, hi); the answer is the slot before.
    cdef Py_ssize_t lo = 0, hi = n, mid
    cdef Py_ssize_t warm = IDX_WARM_BYTES // entry_size
    if n == 0 or idx_key(p, entry_size) > target:
        return -1
    # Kafka's AbstractIndex.indexSlotRangeFor: most lookups land in the tail, so try the
    # warm section first; the result is the same, only the pages touched differ.
    if n > warm and idx_key(p + (n - warm) * entry_size, entry_size) <= target:
        lo = n - warm
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if idx_key(p + mid * entry_size, entry_size) <= target:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


cdef Py_ssize_t idx_search(object buf, Py_ssize_t n_entries, Py_ssize_t entry_size,
                           int64_t target) except -2:
    cdef Py_buffer view
    buffer_acquire(buf, &view, False)
    try:
        if n_entries < 0 or n_entries > view.len // entry_size:
            raise ValueError(
                f"{n_entries} entries of {entry_size} bytes do not fit a buffer of {view.len} bytes")
        return idx_lookup(<const uint8_t *>view.buf, n_entries, entry_size, target)
    finally:
        PyBuffer_Release(&view)


def index_lookup(buf, Py_ssize_t n_entries, int64_t target_relative_offset):
    """Slot of the largest of the first n_entries offset-index entries whose relative
    offset <= target_relative_offset, or -1 when there is none."""
    return idx_search(buf, n_entries, IDX_OFFSET_ENTRY_SIZE, target_relative_offset)


def timeindex_lookup(buf, Py_ssize_t n_entries, int64_t target_ts):
    """Slot of the last of the first n_entries time-index entries whose timestamp <=
    target_ts, or -1 when there is none."""
    return idx_search(buf, n_entries, IDX_TIME_ENTRY_SIZE, target_ts)
