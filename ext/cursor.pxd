# Bounds-checked read cursor over a byte range, and Py_buffer acquisition.
#
# Validators run without the GIL and report Kafka error codes rather than raising, so the
# read functions return NULL / -1 on a short read instead of setting an exception; the
# caller turns that into the right code.
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer
from libc.stdint cimport uint8_t


ctypedef struct ReadCursor:
    const uint8_t *ptr           # next unread byte
    Py_ssize_t remaining         # bytes left after ptr


cdef inline void cursor_init(ReadCursor *c, const uint8_t *ptr, Py_ssize_t n) noexcept nogil:
    c.ptr = ptr
    c.remaining = n


cdef inline const uint8_t *cursor_read(ReadCursor *c, Py_ssize_t n) noexcept nogil:
    """Consume n bytes and return where they start; NULL (and nothing consumed) when fewer
    than n remain or n is negative."""
    cdef const uint8_t *p
    if n < 0 or n > c.remaining:
        return NULL
    p = c.ptr
    c.ptr += n
    c.remaining -= n
    return p


cdef inline int buffer_acquire(object obj, Py_buffer *view, bint writable) except -1:
    """Export obj's bytes as one contiguous run; TypeError for a non-buffer, BufferError for
    a read-only object when writable is asked.  Pair with PyBuffer_Release."""
    return PyObject_GetBuffer(obj, view, PyBUF_WRITABLE if writable else PyBUF_SIMPLE)
