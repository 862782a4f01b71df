# Zigzag varints as Kafka writes them in records (org.apache.kafka.common.utils.ByteUtils):
# varint = 32-bit zigzag in at most 5 bytes, varlong = 64-bit zigzag in at most 10 bytes.
# Bits beyond the width are dropped, as ByteUtils does; a continuation bit on the last
# allowed byte is an error ("Varint is too long").
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t


cdef inline int cursor_read_varlong(ReadCursor *c, int64_t *out) noexcept nogil:
    """Read a zigzag varlong; -1 when truncated or longer than 10 bytes."""
    cdef uint64_t raw = 0
    cdef int shift = 0
    cdef uint8_t b
    if c.remaining > 0 and c.ptr[0] < 0x80:  # one byte: most deltas and lengths in a batch
        raw = c.ptr[0]
        c.ptr += 1
        c.remaining -= 1
        out[0] = <int64_t>((raw >> 1) ^ (~(raw & 1) + 1))
        return 0
    while True:
        if c.remaining <= 0 or shift > 63:
            return -1
        b = c.ptr[0]
        c.ptr += 1
        c.remaining -= 1
        raw |= (<uint64_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            break
        shift += 7
    out[0] = <int64_t>((raw >> 1) ^ (~(raw & 1) + 1))
    return 0


cdef inline int cursor_read_varint(ReadCursor *c, int32_t *out) noexcept nogil:
    """Read a zigzag varint (32 bits); -1 when truncated or longer than 5 bytes."""
    cdef uint32_t raw = 0
    cdef int shift = 0
    cdef uint8_t b
    if c.remaining > 0 and c.ptr[0] < 0x80:  # one byte: most deltas and lengths in a batch
        raw = c.ptr[0]
        c.ptr += 1
        c.remaining -= 1
        out[0] = <int32_t>((raw >> 1) ^ (~(raw & 1) + 1))
        return 0
    while True:
        if c.remaining <= 0 or shift > 28:
            return -1
        b = c.ptr[0]
        c.ptr += 1
        c.remaining -= 1
        raw |= (<uint32_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            break
        shift += 7
    out[0] = <int32_t>((raw >> 1) ^ (~(raw & 1) + 1))
    return 0


cdef inline int varint_len(int64_t value) noexcept nogil:
    """Bytes taken by value as a zigzag varlong (1..10)."""
    cdef uint64_t raw = (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)
    cdef int n = 1
    while raw >= 0x80:
        raw >>= 7
        n += 1
    return n


cdef inline int varint_write(uint8_t *p, int64_t value) noexcept nogil:
    """Write value as a zigzag varlong at p (room for 10 bytes); return the bytes written."""
    cdef uint64_t raw = (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)
    cdef int n = 0
    while raw >= 0x80:
        p[n] = <uint8_t>((raw & 0x7F) | 0x80)
        raw >>= 7
        n += 1
    p[n] = <uint8_t>raw
    return n + 1
