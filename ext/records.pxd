# Record framing inside a v2 batch's records section.
from libc.stdint cimport int32_t, uint8_t


# Walk count records in p[0:n] and check their varint framing; ERR_NONE or
# ERR_INVALID_RECORD (see records.pyx for the rules).
cdef int records_walk(const uint8_t *p, Py_ssize_t n, int32_t count) noexcept nogil


cdef inline int records_skip_bytes(ReadCursor *c, bint nullable) noexcept nogil:
    """Skip a varint length and that many bytes; -1 null is accepted only when nullable."""
    cdef int32_t length
    if cursor_read_varint(c, &length) < 0:
        return -1
    if length == -1 and nullable:
        return 0
    if cursor_read(c, length) == NULL:
        return -1
    return 0
