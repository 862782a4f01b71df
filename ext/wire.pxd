# Hot protocol paths: the Produce and Fetch request scans and the Produce/Fetch response writers
# (parity-tested against the declarative codec of pyk/protocol).
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t


# What a short or malformed field is, for the ProtocolViolation message.
cdef enum:
    WIRE_OK = 0
    WIRE_TRUNCATED = -1            # fewer bytes than the field needs
    WIRE_VARINT_TOO_LONG = -2      # an unsigned varint with a 6th byte
    WIRE_VARINT_TOO_BIG = -3       # an unsigned varint above 32 bits


cdef class ProduceRequestScan:
    # A ProduceRequest body, scanned without a dict per topic or partition.  Per-partition
    # data sits in parallel lists in request order; `records` are zero-copy slices of the
    # frame (so the log can rewrite batch headers in place).
    cdef readonly object transactional_id    # str or None (v3+; None before)
    cdef readonly int16_t acks               # 0, 1 or -1 (validated by the ReplicaManager)
    cdef readonly int32_t timeout_ms         # the client's request timeout
    cdef readonly list topic_names           # str per topic entry, request order
    cdef readonly list topic_counts          # int per topic entry: its number of partitions
    cdef readonly list topics                # str per partition (its entry's name object)
    cdef readonly list partitions            # int per partition: partition index
    cdef readonly list records               # memoryview slice of the frame, or None

    # C callers: scan `frame` (a memoryview of the request frame) from `offset`.
    @staticmethod
    cdef ProduceRequestScan new(object frame, Py_ssize_t offset, int version)

    # Fill the fields from the body at `offset`; ProtocolViolation when malformed.
    cdef int _scan(self, object frame, Py_ssize_t offset, int version) except -1


# A growable byte buffer for a response being written (malloc'd; the writer frees it).
ctypedef struct WireBuffer:
    uint8_t *data                # the bytes written so far
    Py_ssize_t len               # bytes written
    Py_ssize_t cap               # bytes allocated


# Unsigned LEB128 of at most 5 bytes / 32 bits (Kafka's UNSIGNED_VARINT): WIRE_OK or an
# error code above; nothing is promised about the cursor after an error.
cdef int cursor_read_uvarint(ReadCursor *c, uint32_t *out) noexcept nogil

# Skip a tagged-field section (flexible versions); raises ProtocolViolation.
cdef int wire_skip_tags(ReadCursor *c, const uint8_t *base, str where) except -1


cdef inline int uvarint_size(uint32_t value) noexcept nogil:
    """Bytes taken by value as an unsigned varint (1..5)."""
    cdef int n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline uint8_t *uvarint_write(uint8_t *p, uint32_t value) noexcept nogil:
    """Write value as an unsigned varint at p; return the byte after it."""
    while value >= 0x80:
        p[0] = <uint8_t>((value & 0x7F) | 0x80)
        value >>= 7
        p += 1
    p[0] = <uint8_t>value
    return p + 1
