# Binary search over Kafka's offset and time index entries.
from libc.stdint cimport int64_t, uint8_t


# Slot of the last of n entries (entry_size bytes each, key a big-endian int32 or int64 at
# the entry start) whose key <= target, or -1.  Keys are non-decreasing.
cdef Py_ssize_t idx_lookup(const uint8_t *p, Py_ssize_t n, Py_ssize_t entry_size,
                           int64_t target) noexcept nogil
