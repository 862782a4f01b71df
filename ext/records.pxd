# Record framing inside a v2 batch's records section.
from libc.stdint cimport int32_t, uint8_t


# Walk count records in p[0:n] and check their varint framing; ERR_NONE or
# ERR_INVALID_RECORD (see records.pyx for the rules).
cdef int records_walk(const uint8_t *p, Py_ssize_t n, int32_t count) noexcept nogil
