# Zigzag varlong helpers for Python callers (record builders, the protocol layer's
# records-aware paths).  The nogil readers the validators use live in varint.pxd.


def encode_varint(int64_t value):
    """value as a zigzag varlong (1..10 bytes); OverflowError outside int64."""
    cdef uint8_t out[10]
    cdef int n = varint_write(out, value)
    return PyBytes_FromStringAndSize(<char *>out, n)


def decode_varint(buf, Py_ssize_t offset=0):
    """Read a zigzag varlong at offset; return (value, offset after it).  ValueError when
    offset is outside buf, the bytes end early, or the varint is longer than 10 bytes."""
    cdef Py_buffer view
    cdef ReadCursor c
    cdef int64_t value
    buffer_acquire(buf, &view, False)
    try:
        if offset < 0 or offset > view.len:
            raise ValueError(f"offset {offset} outside a buffer of {view.len} bytes")
        cursor_init(&c, <const uint8_t *>view.buf + offset, view.len - offset)
        if cursor_read_varlong(&c, &value) < 0:
            raise ValueError(f"truncated or over-long varint at offset {offset}")
        return value, view.len - c.remaining
    finally:
        PyBuffer_Release(&view)


def varint_size(int64_t value):
    """Bytes value takes as a zigzag varlong."""
    return varint_len(value)
