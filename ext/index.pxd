# Binary search over Kafka's offset and time index entries.
from libc.stdint cimport int64_t, uint8_t


# Slot of the last of n entries (entry_size bytes each, key a big-endian int32 or int64 at
# the entry start) whose key <= target, or -1.  Keys are non-decreasing.
cdef Py_ssize_t idx_lookup(const uint8_t *p, Py_ssize_t n, Py_ssize_t entry_size,
                           int64_t target) noexcept nogil


cdef inline int64_t idx_key(const uint8_t *entry, Py_ssize_t entry_size) noexcept nogil:
    """The sort key at the start of an entry: int32 relative offset or int64 timestamp."""
    if entry_size == IDX_OFFSET_ENTRY_SIZE:
        return hton_load_i32(entry)
    return hton_load_i64(entry)


# index_lookup / timeindex_lookup behind the argument checks (ValueError when n_entries
# does not fit buf).
cdef Py_ssize_t idx_search(object buf, Py_ssize_t n_entries, Py_ssize_t entry_size,
                           int64_t target) except -2
