# Log compaction's key -> latest offset map (Kafka's SkimpyOffsetMap) and the keyed record
# walk shared by the map, the cleaner's batch filter and the produce-side null-key check.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t


cdef enum:
    OFFSET_MAP_SLOT_SIZE = 16     # bytes per slot (hash + offset)
    # Records sections above this size are walked (hashed, filtered) without the GIL:
    # xxhash64 runs at several GB/s, so 16 KiB is a few microseconds of work.
    OFFSET_MAP_NOGIL_THRESHOLD = 16 * 1024


# One slot of the open-addressing table: 16 bytes, so a buffer of N bytes holds N // 16.
ctypedef struct OffsetMapSlot:
    uint64_t hash                # xxhash64 of the key, OFFSET_MAP_EMPTY for a free slot
    int64_t offset               # latest offset seen for that key


# One record of a batch, as the keyed walk yields it (pointers into the records section).
ctypedef struct KeyedRecord:
    const uint8_t *start         # first byte of the record (its length varint)
    Py_ssize_t size              # whole record, length varint included
    int64_t timestamp_delta      # timestamp - batch baseTimestamp
    const uint8_t *after_timestamp  # first byte after timestampDelta (offsetDelta onwards)
    int32_t offset_delta         # offset - batch base offset
    const uint8_t *key           # key bytes, NULL for a null key
    int32_t key_len              # -1 for a null key
    bint null_value              # a tombstone


cdef class OffsetMap:
    cdef OffsetMapSlot *slots_    # malloc'd table of `slots` entries
    cdef readonly Py_ssize_t slots         # table capacity: a prime <= memory // 16
    cdef readonly Py_ssize_t max_entries   # slots * load factor: the map is full beyond it
    cdef readonly Py_ssize_t size          # distinct keys (hashes) stored
    cdef public int64_t latest_offset      # end of the map's range: last put (or batch end), -1 when empty
    cdef readonly int64_t probes           # slots visited by put/get since the last clear

    cdef Py_ssize_t _find(self, uint64_t hash) noexcept nogil
    cdef int _put_hash(self, uint64_t hash, int64_t offset) noexcept nogil
    cdef int64_t _get_hash(self, uint64_t hash) noexcept nogil
    cdef int _put_records(self, ReadCursor *c, int64_t base_offset, int32_t count, int64_t start_offset,
                          Py_ssize_t *put) noexcept nogil
    cdef int _filter_records(self, ReadCursor *c, int64_t base_offset, int32_t count, bint retain_deletes,
                             uint8_t *keep, Py_ssize_t *kept, Py_ssize_t *removed,
                             bint *kept_tombstone) noexcept nogil


# Read the next record of an uncompressed records section into *rec: 0, or -1 for a
# malformed record (the cursor is then unusable).
cdef int keyed_read(ReadCursor *c, KeyedRecord *rec) noexcept nogil
# Copy the records flagged in keep[] from p[0:n] to out, re-basing their timestamp deltas by
# rebase (old baseTimestamp - new baseTimestamp); the bytes written, or -1 when malformed.
cdef Py_ssize_t keyed_copy(ReadCursor *c, int32_t count, const uint8_t *keep, int64_t rebase,
                           uint8_t *out) noexcept nogil
# Count the null keys of `count` records; -1 when malformed.
cdef int keyed_count_null(ReadCursor *c, int32_t count, Py_ssize_t *nulls) noexcept nogil


cdef inline uint64_t offset_map_hash(const uint8_t *key, Py_ssize_t n) noexcept nogil:
    """xxhash64 (seed 0) of a key; 0 is reserved for empty slots and maps to 1."""
    cdef uint64_t h = XXH64(key, <size_t>n, 0)
    return h if h != 0 else 1
