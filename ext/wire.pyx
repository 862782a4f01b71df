# Hot protocol paths (STYLE practice 7): the ProduceRequest and FetchRequest scans, the
# Produce/Fetch response writers and the request header scan, byte-for-byte the declarative
# codec's (pyk/protocol/compile.py, specs in pyk/protocol/messages/), which stays the
# reference and the parity target:
#
#   ProduceRequest v0-v2 => acks:INT16 timeout_ms:INT32 [topic_data]
#   ProduceRequest v3-v9 => transactional_id:NULLABLE_STRING acks:INT16 timeout_ms:INT32 [topic_data]
#     topic_data => name:STRING [partition_data]
#       partition_data => index:INT32 records:RECORDS
#   v9 is flexible (KIP-482): COMPACT_ strings/arrays/records (unsigned varint length + 1, 0
#   for null) and a TAG_BUFFER after each struct and the body.
#
#   ProduceResponse => [responses] throttle_time_ms:INT32 (v1+)
#     responses => name:STRING [partition_responses]
#       partition_responses => index:INT32 error_code:INT16 base_offset:INT64
#                              log_append_time_ms:INT64 (v2+) log_start_offset:INT64 (v5+)
#                              [record_errors] (v8+) error_message:NULLABLE_STRING (v8+)
#
# The scans have no loop over bytes (every field is a few bytes read through the cursor and the
# partitions need Python objects), so they keep the GIL throughout (practice 5 does not apply).
from cpython.bytearray cimport PyByteArray_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from cpython.sequence cimport PySequence_GetSlice
from libc.stdlib cimport free, malloc, realloc
from libc.stdint cimport int8_t
from libc.string cimport memcpy

from pyk.errors import ProtocolViolation


# Reading ----------------------------------------------------------------------------------

cdef int cursor_read_uvarint(ReadCursor *c, uint32_t *out) noexcept nogil:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if c.remaining <= 0:
            return WIRE_TRUNCATED
        b = c.ptr[0]
        c.ptr += 1
        c.remaining -= 1
        result |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 28:
            return WIRE_VARINT_TOO_LONG
    if result > <uint64_t>0xFFFFFFFF:
        return WIRE_VARINT_TOO_BIG
    out[0] = <uint32_t>result
    return WIRE_OK


cdef int wire_fail(int code, str what, ReadCursor *c, const uint8_t *base, Py_ssize_t need) except -1:
    """Raise the ProtocolViolation for a failed read of `what` at the cursor."""
    cdef Py_ssize_t at = c.ptr - base
    if code == WIRE_VARINT_TOO_LONG:
        raise ProtocolViolation(f"{what}: unsigned varint before offset {at} is longer than 5 bytes")
    if code == WIRE_VARINT_TOO_BIG:
        raise ProtocolViolation(f"{what}: unsigned varint before offset {at} exceeds 32 bits")
    raise ProtocolViolation(f"expected {need} bytes ({what}) at offset {at}, {c.remaining} remain")


cdef inline const uint8_t *wire_take(ReadCursor *c, const uint8_t *base, Py_ssize_t n, str what) except NULL:
    cdef const uint8_t *p = cursor_read(c, n)
    if p == NULL:
        wire_fail(WIRE_TRUNCATED, what, c, base, n)
    return p


cdef int64_t wire_length(ReadCursor *c, const uint8_t *base, bint flexible, int width, str what) except? -3:
    """A string/bytes/array length: INT16 (width 2) or INT32 (width 4) in classic versions,
    unsigned varint minus one in flexible ones; -1 is null, below -1 is malformed (the caller
    decides which it accepts)."""
    cdef uint32_t raw = 0
    cdef int code
    cdef int64_t n
    cdef const uint8_t *p
    if flexible:
        code = cursor_read_uvarint(c, &raw)
        if code != WIRE_OK:
            wire_fail(code, what + " length", c, base, 1)
        return <int64_t>raw - 1
    p = cursor_read(c, width)
    if p == NULL:  # (the message is built only here: this runs for every field)
        wire_fail(WIRE_TRUNCATED, what + " length", c, base, width)
    if width == 2:
        return hton_load_i16(p)
    n = hton_load_i32(p)
    if n == -3:  # the except? value: keep it distinct from an exception
        raise ProtocolViolation(f"{what}: length -3 at offset {c.ptr - base - 4}")
    return n


cdef int64_t wire_count(ReadCursor *c, const uint8_t *base, bint flexible, str what) except -1:
    """A non-nullable array count; an element takes at least one byte, so a count above the
    remaining bytes is refused before anything is built for it."""
    cdef int64_t n = wire_length(c, base, flexible, 4, what)
    if n < 0:
        raise ProtocolViolation(f"null or negative length for non-nullable {what} at offset {c.ptr - base}")
    if n > c.remaining:
        raise ProtocolViolation(f"{what}: {n} elements at offset {c.ptr - base} "
                                f"but only {c.remaining} bytes remain")
    return n


cdef object wire_string(ReadCursor *c, const uint8_t *base, bint flexible, bint nullable, str what):
    cdef int64_t n = wire_length(c, base, flexible, 2, what)
    cdef const uint8_t *p
    if n < 0:
        if n == -1 and nullable:
            return None
        raise ProtocolViolation(f"{what}: length {n} at offset {c.ptr - base}")
    p = wire_take(c, base, <Py_ssize_t>n, what)
    try:
        return PyUnicode_DecodeUTF8(<const char *>p, <Py_ssize_t>n, NULL)
    except UnicodeDecodeError as exc:
        raise ProtocolViolation(f"{what} is not UTF-8: {exc}") from None


cdef int wire_skip_tags(ReadCursor *c, const uint8_t *base, str where) except -1:
    cdef uint32_t count = 0, tag = 0, size = 0
    cdef int64_t prev = -1
    cdef int code
    cdef uint32_t _
    if c.remaining > 0 and c.ptr[0] == 0:  # almost always: no tagged fields
        c.ptr += 1
        c.remaining -= 1
        return 0
    code = cursor_read_uvarint(c, &count)
    if code != WIRE_OK:
        wire_fail(code, where + " tagged fields", c, base, 1)
    if count > c.remaining:
        raise ProtocolViolation(f"{where}: {count} tagged fields at offset {c.ptr - base}, "
                                f"only {c.remaining} bytes remain")
    for _ in range(count):
        code = cursor_read_uvarint(c, &tag)
        if code != WIRE_OK:
            wire_fail(code, where + " tag", c, base, 1)
        if tag <= prev:
            raise ProtocolViolation(f"{where}: tagged field {tag} at offset {c.ptr - base} is not above "
                                    f"the previous tag {prev}")
        prev = tag
        code = cursor_read_uvarint(c, &size)
        if code != WIRE_OK:
            wire_fail(code, where + " tag size", c, base, 1)
        if cursor_read(c, size) == NULL:
            wire_fail(WIRE_TRUNCATED, f"{where} tagged field {tag}", c, base, size)
    return 0


# ProduceRequest scan ----------------------------------------------------------------------

cdef class ProduceRequestScan:
    """A ProduceRequest body as the produce path needs it: no dict per topic or partition.

    Built per request on the shard's event loop and dropped with its response; holds the
    request frame alive through the `records` slices.
    """

    def __init__(self, frame, Py_ssize_t offset, int version):
        self._scan(frame, offset, version)

    @staticmethod
    cdef ProduceRequestScan new(object frame, Py_ssize_t offset, int version):
        cdef ProduceRequestScan self = ProduceRequestScan.__new__(ProduceRequestScan)
        self._scan(frame, offset, version)
        return self

    cdef int _scan(self, object frame, Py_ssize_t offset, int version) except -1:
        cdef Py_buffer view
        cdef ReadCursor c
        cdef const uint8_t *base
        cdef bint flexible = version >= 9
        cdef int64_t n_topics, n_parts, n, start, _t, _i
        cdef str name
        cdef object records
        if version < 0 or version > 9:
            raise ValueError(f"ProduceRequest v{version} is not implemented")
        buffer_acquire(frame, &view, False)
        try:
            if offset < 0 or offset > view.len:
                raise ValueError(f"offset {offset} outside a frame of {view.len} bytes")
            base = <const uint8_t *>view.buf
            cursor_init(&c, base + offset, view.len - offset)
            self.transactional_id = None
            if version >= 3:
                self.transactional_id = wire_string(&c, base, flexible, True,
                                                    "ProduceRequest.transactional_id")
            self.acks = hton_load_i16(wire_take(&c, base, 2, "ProduceRequest.acks"))
            self.timeout_ms = hton_load_i32(wire_take(&c, base, 4, "ProduceRequest.timeout_ms"))
            self.topic_names = []
            self.topic_counts = []
            self.topics = []
            self.partitions = []
            self.records = []
            n_topics = wire_count(&c, base, flexible, "array ProduceRequest.topic_data")
            for _t in range(n_topics):
                name = wire_string(&c, base, flexible, False, "string ProduceRequest.topic_data[].name")
                n_parts = wire_count(&c, base, flexible, "array ProduceRequest.topic_data[].partition_data")
                self.topic_names.append(name)
                self.topic_counts.append(n_parts)
                for _i in range(n_parts):
                    self.topics.append(name)
                    self.partitions.append(hton_load_i32(wire_take(&c, base, 4, "partition_data[].index")))
                    n = wire_length(&c, base, flexible, 4, "partition_data[].records")
                    if n < 0:
                        if n != -1:
                            raise ProtocolViolation(
                                f"partition_data[].records: length {n} at offset {c.ptr - base}")
                        records = None
                    else:
                        start = c.ptr - base
                        wire_take(&c, base, <Py_ssize_t>n, "partition_data[].records")
                        records = PySequence_GetSlice(frame, <Py_ssize_t>start, <Py_ssize_t>(start + n))
                    self.records.append(records)
                    if flexible:
                        wire_skip_tags(&c, base, "ProduceRequest.topic_data[].partition_data[]")
                if flexible:
                    wire_skip_tags(&c, base, "ProduceRequest.topic_data[]")
            if flexible:
                wire_skip_tags(&c, base, "ProduceRequest")
        finally:
            PyBuffer_Release(&view)
        return 0


def scan_produce_request(frame, Py_ssize_t offset, int version):
    """The ProduceRequest body at `offset` of `frame` (a memoryview of the request frame, size
    prefix excluded; writable when the log is to rewrite the batches in place); raises
    ProtocolViolation for a truncated or malformed body, as protocol.decode_request does."""
    return ProduceRequestScan.new(frame, offset, version)


# FetchRequest scan ------------------------------------------------------------------------
#
#   FetchRequest v4-v12 => replica_id:INT32 max_wait_ms:INT32 min_bytes:INT32 max_bytes:INT32
#                          isolation_level:INT8 session_id:INT32 (v7+) session_epoch:INT32 (v7+)
#                          [topics] [forgotten_topics_data] (v7+) rack_id:STRING (v11+)
#                          TAG_BUFFER (v12; tag 0: cluster_id:COMPACT_NULLABLE_STRING)
#     topics => topic:STRING [partitions] TAG_BUFFER (v12)
#       partitions => partition:INT32 current_leader_epoch:INT32 (v9+) fetch_offset:INT64
#                     last_fetched_epoch:INT32 (v12) log_start_offset:INT64 (v5+)
#                     partition_max_bytes:INT32 TAG_BUFFER (v12)
#     forgotten_topics_data => topic:STRING [partitions:INT32] TAG_BUFFER (v12)
#
# The result is the declarative decoder's dict, key for key, with the fields a version lacks at
# their defaults, so the Fetch handler (and whatever checks run before it) reads it as before;
# what the scan saves is the generated Python per field and per partition.

cdef object fetch_cluster_id(ReadCursor *c, const uint8_t *base, object cluster_id):
    """The body's tag section (v12): cluster_id (tag 0, as often as it comes: the last one
    counts) read from where its value starts, any other tag skipped; like the declarative
    decoder, tags in any order, and the value of a tag may run past its declared size (the
    next tag starts where the size says)."""
    cdef uint32_t count = 0, tag = 0, size = 0, _i
    cdef int code
    cdef ReadCursor value
    code = cursor_read_uvarint(c, &count)
    if code != WIRE_OK:
        wire_fail(code, "FetchRequest tagged fields", c, base, 1)
    for _i in range(count):
        code = cursor_read_uvarint(c, &tag)
        if code == WIRE_OK:
            code = cursor_read_uvarint(c, &size)
        if code != WIRE_OK:
            wire_fail(code, "FetchRequest tagged field", c, base, 1)
        value = c[0]
        if cursor_read(c, size) == NULL:
            wire_fail(WIRE_TRUNCATED, f"FetchRequest tagged field {tag}", c, base, size)
        if tag == 0:
            cluster_id = wire_string(&value, base, True, True, "FetchRequest.cluster_id")
    return cluster_id


def scan_fetch_request(frame, Py_ssize_t offset, int version):
    """The FetchRequest body at `offset` of `frame` (the request frame without its size
    prefix) as protocol.decode_request(FETCH, version, frame, offset) returns it; raises
    ProtocolViolation for a truncated or malformed body, as that does."""
    cdef Py_buffer view
    cdef ReadCursor c
    cdef const uint8_t *base
    cdef const uint8_t *p
    cdef bint flexible = version >= 12
    cdef int64_t n_topics, n_parts, n, _t, _i
    cdef int32_t partition, current_leader_epoch, last_fetched_epoch, max_part
    cdef int64_t fetch_offset, log_start_offset
    cdef object cluster_id = None, rack_id = "", name
    cdef int32_t replica_id, max_wait_ms, min_bytes, max_bytes, session_id = 0, session_epoch = -1
    cdef int8_t isolation_level
    cdef list topics, parts, forgotten, indexes
    if version < 4 or version > 12:
        raise ValueError(f"FetchRequest v{version} is not implemented")
    buffer_acquire(frame, &view, False)
    try:
        if offset < 0 or offset > view.len:
            raise ValueError(f"offset {offset} outside a frame of {view.len} bytes")
        base = <const uint8_t *>view.buf
        cursor_init(&c, base + offset, view.len - offset)
        p = wire_take(&c, base, 17, "FetchRequest")  # replica_id .. isolation_level
        replica_id, max_wait_ms = hton_load_i32(p), hton_load_i32(p + 4)
        min_bytes, max_bytes, isolation_level = hton_load_i32(p + 8), hton_load_i32(p + 12), <int8_t>p[16]
        if version >= 7:
            p = wire_take(&c, base, 8, "FetchRequest.session_id")
            session_id, session_epoch = hton_load_i32(p), hton_load_i32(p + 4)
        topics = []
        n_topics = wire_count(&c, base, flexible, "array FetchRequest.topics")
        for _t in range(n_topics):
            name = wire_string(&c, base, flexible, False, "string FetchRequest.topics[].topic")
            n_parts = wire_count(&c, base, flexible, "array FetchRequest.topics[].partitions")
            parts = []
            for _i in range(n_parts):
                current_leader_epoch = last_fetched_epoch = -1
                log_start_offset = -1
                partition = hton_load_i32(wire_take(&c, base, 4, "FetchRequest.topics[].partitions[]"))
                if version >= 9:
                    current_leader_epoch = hton_load_i32(wire_take(&c, base, 4, "current_leader_epoch"))
                fetch_offset = hton_load_i64(wire_take(&c, base, 8, "fetch_offset"))
                if version >= 12:
                    last_fetched_epoch = hton_load_i32(wire_take(&c, base, 4, "last_fetched_epoch"))
                if version >= 5:
                    log_start_offset = hton_load_i64(wire_take(&c, base, 8, "log_start_offset"))
                max_part = hton_load_i32(wire_take(&c, base, 4, "partition_max_bytes"))
                parts.append({"partition": partition, "current_leader_epoch": current_leader_epoch,
                              "fetch_offset": fetch_offset, "last_fetched_epoch": last_fetched_epoch,
                              "log_start_offset": log_start_offset, "partition_max_bytes": max_part})
                if flexible:
                    wire_skip_tags(&c, base, "FetchRequest.topics[].partitions[]")
            if flexible:
                wire_skip_tags(&c, base, "FetchRequest.topics[]")
            topics.append({"topic": name, "partitions": parts})
        forgotten = []
        if version >= 7:
            n_topics = wire_count(&c, base, flexible, "array FetchRequest.forgotten_topics_data")
            for _t in range(n_topics):
                name = wire_string(&c, base, flexible, False, "FetchRequest.forgotten_topics_data[].topic")
                n = wire_count(&c, base, flexible, "array FetchRequest.forgotten_topics_data[].partitions")
                p = wire_take(&c, base, 4 * n, "FetchRequest.forgotten_topics_data[].partitions")
                indexes = [hton_load_i32(p + 4 * _i) for _i in range(n)]
                if flexible:
                    wire_skip_tags(&c, base, "FetchRequest.forgotten_topics_data[]")
                forgotten.append({"topic": name, "partitions": indexes})
        if version >= 11:
            rack_id = wire_string(&c, base, flexible, False, "string FetchRequest.rack_id")
        if flexible:
            cluster_id = fetch_cluster_id(&c, base, cluster_id)
        return {"cluster_id": cluster_id, "replica_id": replica_id, "max_wait_ms": max_wait_ms,
                "min_bytes": min_bytes, "max_bytes": max_bytes, "isolation_level": isolation_level,
                "session_id": session_id, "session_epoch": session_epoch, "topics": topics,
                "forgotten_topics_data": forgotten, "rack_id": rack_id}
    finally:
        PyBuffer_Release(&view)


# ProduceResponse writer -------------------------------------------------------------------

ctypedef struct ProducePartitionOut:
    int32_t index                 # partition index
    int16_t error                 # Kafka error code
    int64_t base_offset           # first offset assigned, or -1
    int64_t log_append_time       # LogAppendTime stamp, or -1
    int64_t log_start_offset      # the log's start offset, or -1
    const char *message           # UTF-8 error message (borrowed from its str), or NULL
    Py_ssize_t message_len        # its length


cdef inline uint8_t *wire_put_len(uint8_t *p, bint flexible, int width, Py_ssize_t n) noexcept nogil:
    """A length (or -1 for null) in the version's encoding."""
    if flexible:
        return uvarint_write(p, <uint32_t>(n + 1))
    if width == 2:
        hton_store_i16(p, <int16_t>n)
        return p + 2
    hton_store_i32(p, <int32_t>n)
    return p + 4


cdef inline Py_ssize_t wire_len_size(bint flexible, int width, Py_ssize_t n) noexcept nogil:
    return uvarint_size(<uint32_t>(n + 1)) if flexible else width


def encode_produce_response(int version, int32_t correlation_id, list topic_names, list topic_counts,
                            list partitions, list results, int32_t throttle_time_ms=0):
    """The whole ProduceResponse frame (size prefix and response header included) as bytes:
    protocol.encode_response(PRODUCE, version, correlation_id, body) for the body whose
    topics are `topic_names` with `topic_counts` partitions each, the partitions' indexes in
    `partitions` and their outcomes in `results` (objects with error, base_offset,
    log_append_time, log_start_offset and message, as ReplicaManager's PartitionResponse)."""
    cdef bint flexible = version >= 9
    cdef Py_ssize_t n_topics = len(topic_names)
    cdef Py_ssize_t n_parts = len(results)
    cdef Py_ssize_t size, i, t, k, count, name_len, total = 0
    cdef ProducePartitionOut *outs
    cdef ProducePartitionOut *o
    cdef const char *name
    cdef uint8_t *p
    cdef bytes frame
    cdef object msg
    if version < 0 or version > 9:
        raise ValueError(f"ProduceResponse v{version} is not implemented")
    if len(topic_counts) != n_topics or len(partitions) != n_parts:
        raise ValueError(f"{n_topics} topics with {len(topic_counts)} counts, "
                         f"{len(partitions)} indexes with {n_parts} results")
    outs = <ProducePartitionOut *>malloc(sizeof(ProducePartitionOut) * <size_t>max(n_parts, 1))
    if outs == NULL:
        raise MemoryError()
    try:
        # Size: size prefix, correlation id, header tag buffer (flexible), topics array.
        size = 8 + (1 if flexible else 0) + wire_len_size(flexible, 4, n_topics)
        for t in range(n_topics):
            PyUnicode_AsUTF8AndSize(topic_names[t], &name_len)
            size += wire_len_size(flexible, 2, name_len) + name_len
            count = topic_counts[t]
            total += count
            size += wire_len_size(flexible, 4, count) + (1 if flexible else 0)
        if total != n_parts:
            raise ValueError(f"topics with {total} partitions, {n_parts} results")
        for i in range(n_parts):
            r = results[i]
            o = &outs[i]
            o.index = partitions[i]
            o.error = r.error
            o.base_offset = r.base_offset
            o.log_append_time = r.log_append_time
            o.log_start_offset = r.log_start_offset
            o.message = NULL
            o.message_len = -1
            size += 14
            if version >= 2:
                size += 8
            if version >= 5:
                size += 8
            if version >= 8:
                msg = r.message
                if msg is not None:
                    o.message = PyUnicode_AsUTF8AndSize(msg, &o.message_len)
                # record_errors (always empty: pyk refuses whole batches) + error_message
                size += wire_len_size(flexible, 4, 0) + wire_len_size(flexible, 2, o.message_len)
                if o.message_len > 0:
                    size += o.message_len
            if flexible:
                size += 1
        if version >= 1:
            size += 4
        if flexible:
            size += 1
        frame = PyBytes_FromStringAndSize(NULL, size)
        p = <uint8_t *>PyBytes_AS_STRING(frame)
        hton_store_i32(p, <int32_t>(size - 4))
        hton_store_i32(p + 4, correlation_id)
        p += 8
        if flexible:
            p[0] = 0  # response header v1: empty tag buffer
            p += 1
        p = wire_put_len(p, flexible, 4, n_topics)
        k = 0
        for t in range(n_topics):
            name = PyUnicode_AsUTF8AndSize(topic_names[t], &name_len)
            p = wire_put_len(p, flexible, 2, name_len)
            memcpy(p, name, <size_t>name_len)
            p += name_len
            count = topic_counts[t]
            p = wire_put_len(p, flexible, 4, count)
            for i in range(k, k + count):
                o = &outs[i]
                hton_store_i32(p, o.index)
                hton_store_i16(p + 4, o.error)
                hton_store_i64(p + 6, o.base_offset)
                p += 14
                if version >= 2:
                    hton_store_i64(p, o.log_append_time)
                    p += 8
                if version >= 5:
                    hton_store_i64(p, o.log_start_offset)
                    p += 8
                if version >= 8:
                    p = wire_put_len(p, flexible, 4, 0)
                    p = wire_put_len(p, flexible, 2, o.message_len)
                    if o.message_len > 0:
                        memcpy(p, o.message, <size_t>o.message_len)
                        p += o.message_len
                if flexible:
                    p[0] = 0
                    p += 1
            k += count
            if flexible:
                p[0] = 0
                p += 1
        if version >= 1:
            hton_store_i32(p, throttle_time_ms)
            p += 4
        if flexible:
            p[0] = 0
            p += 1
        assert p == <uint8_t *>PyBytes_AS_STRING(frame) + size
        return frame
    finally:
        free(outs)


# FetchResponse writer ---------------------------------------------------------------------
#
#   FetchResponse v4-v12 => throttle_time_ms:INT32 error_code:INT16 (v7+) session_id:INT32 (v7+)
#                           [responses] TAG_BUFFER (v12)
#     responses => topic:STRING [partitions] TAG_BUFFER (v12)
#       partitions => partition_index:INT32 error_code:INT16 high_watermark:INT64
#                     last_stable_offset:INT64 log_start_offset:INT64 (v5+)
#                     [aborted_transactions] (nullable) preferred_read_replica:INT32 (v11+)
#                     records:RECORDS TAG_BUFFER (v12: no tagged field set, they sit at defaults)
#         aborted_transactions => producer_id:INT64 first_offset:INT64 TAG_BUFFER (v12)
#
# The records of a partition are a file slice sent with sendfile/splice: the frame is cut
# around each, which becomes its own part (its `size` counted in the size prefix), exactly
# as protocol.encode_response does.

cdef int wbuf_reserve(WireBuffer *b, Py_ssize_t n) except -1:
    """Room for n more bytes."""
    cdef Py_ssize_t cap
    cdef uint8_t *data
    if b.len + n <= b.cap:
        return 0
    cap = max(b.cap * 2, b.len + n, 256)
    data = <uint8_t *>realloc(b.data, <size_t>cap)
    if data == NULL:
        raise MemoryError()
    b.data, b.cap = data, cap
    return 0


cdef inline void wbuf_len(WireBuffer *b, bint flexible, int width, Py_ssize_t n) noexcept:
    """A length (room reserved by the caller: 5 bytes)."""
    b.len = wire_put_len(b.data + b.len, flexible, width, n) - b.data


def encode_fetch_response(int version, int32_t correlation_id, int32_t throttle_time_ms, int16_t error_code,
                          int32_t session_id, list topic_names, list topic_counts, list partitions,
                          list results):
    """The whole FetchResponse frame as parts to write in order (bytes, and each partition's
    records when they are a file slice): protocol.encode_response(FETCH, version, ...) of the
    body whose topics are `topic_names` with `topic_counts` partitions each, the partitions'
    indexes in `partitions` and their reads in `results` (objects with error, high_watermark,
    last_stable_offset, log_start_offset, aborted_transactions: (producer id, first offset)
    pairs or None, preferred_read_replica (KIP-392, -1 for none) and records: a file slice, a
    buffer, or None for an empty record set: Kafka always sends one, and librdkafka 2.0.2
    rejects a null one), and the tagged fields at defaults."""
    cdef bint flexible = version >= 12
    cdef Py_ssize_t n_topics = len(topic_names)
    cdef Py_ssize_t n_parts = len(results)
    cdef Py_ssize_t t, i, k = 0, count, name_len, n_aborted, total, start
    cdef const char *name
    cdef WireBuffer b
    cdef Py_buffer view
    cdef list cuts = []  # (position in b, file slice): where the frame is cut around a slice
    cdef list parts
    cdef object r, records, aborted
    if version < 4 or version > 12:
        raise ValueError(f"FetchResponse v{version} is not implemented")
    if len(topic_counts) != n_topics or len(partitions) != n_parts:
        raise ValueError(f"{n_topics} topics with {len(topic_counts)} counts, "
                         f"{len(partitions)} indexes with {n_parts} results")
    b.data, b.len, b.cap = NULL, 0, 0
    try:
        wbuf_reserve(&b, 32)
        b.len = 8  # size prefix (written last) and correlation id
        hton_store_i32(b.data + 4, correlation_id)
        if flexible:
            b.data[b.len] = 0  # response header v1: empty tag buffer
            b.len += 1
        hton_store_i32(b.data + b.len, throttle_time_ms)
        b.len += 4
        if version >= 7:
            hton_store_i16(b.data + b.len, error_code)
            hton_store_i32(b.data + b.len + 2, session_id)
            b.len += 6
        wbuf_len(&b, flexible, 4, n_topics)
        for t in range(n_topics):
            name = PyUnicode_AsUTF8AndSize(topic_names[t], &name_len)
            count = topic_counts[t]
            if count < 0 or k + count > n_parts:
                raise ValueError(f"topic counts exceed the {n_parts} results")
            wbuf_reserve(&b, 10 + name_len)
            wbuf_len(&b, flexible, 2, name_len)
            memcpy(b.data + b.len, name, <size_t>name_len)
            b.len += name_len
            wbuf_len(&b, flexible, 4, count)
            for i in range(k, k + count):
                r = results[i]
                aborted = r.aborted_transactions
                n_aborted = -1 if aborted is None else len(aborted)
                wbuf_reserve(&b, 48 + 21 * max(n_aborted, 0))
                hton_store_i32(b.data + b.len, partitions[i])
                hton_store_i16(b.data + b.len + 4, r.error)
                hton_store_i64(b.data + b.len + 6, r.high_watermark)
                hton_store_i64(b.data + b.len + 14, r.last_stable_offset)
                b.len += 22
                if version >= 5:
                    hton_store_i64(b.data + b.len, r.log_start_offset)
                    b.len += 8
                wbuf_len(&b, flexible, 4, n_aborted)
                if n_aborted > 0:
                    for producer_id, first_offset in aborted:
                        hton_store_i64(b.data + b.len, producer_id)
                        hton_store_i64(b.data + b.len + 8, first_offset)
                        b.len += 16
                        if flexible:
                            b.data[b.len] = 0
                            b.len += 1
                if version >= 11:
                    hton_store_i32(b.data + b.len, r.preferred_read_replica)  # KIP-392; -1: none
                    b.len += 4
                records = r.records
                if records is None:
                    wbuf_len(&b, flexible, 4, 0)
                elif isinstance(records, (bytes, bytearray, memoryview)):
                    buffer_acquire(records, &view, False)
                    try:
                        wbuf_reserve(&b, 6 + view.len)
                        wbuf_len(&b, flexible, 4, view.len)
                        memcpy(b.data + b.len, view.buf, <size_t>view.len)
                        b.len += view.len
                    finally:
                        PyBuffer_Release(&view)
                else:
                    wbuf_len(&b, flexible, 4, records.size)
                    cuts.append((b.len, records))
                if flexible:
                    wbuf_reserve(&b, 1)
                    b.data[b.len] = 0  # no tagged fields: diverging epoch, leader, snapshot at defaults
                    b.len += 1
            k += count
            if flexible:
                wbuf_reserve(&b, 1)
                b.data[b.len] = 0
                b.len += 1
        if k != n_parts:
            raise ValueError(f"topics with {k} partitions, {n_parts} results")
        if flexible:
            wbuf_reserve(&b, 1)
            b.data[b.len] = 0
            b.len += 1
        total = b.len - 4
        for _, records in cuts:
            total += records.size
        hton_store_i32(b.data, <int32_t>total)
        if not cuts:
            return [PyBytes_FromStringAndSize(<char *>b.data, b.len)]
        parts = []
        start = 0
        for i, records in cuts:
            if i > start:
                parts.append(PyBytes_FromStringAndSize(<char *>b.data + start, i - start))
            parts.append(records)
            start = i
        if b.len > start:
            parts.append(PyBytes_FromStringAndSize(<char *>b.data + start, b.len - start))
        return parts
    finally:
        free(b.data)


# Request header ---------------------------------------------------------------------------
#
#   Request Header v1 => request_api_key:INT16 request_api_version:INT16 correlation_id:INT32
#                        client_id:NULLABLE_STRING
#   Request Header v2 => v1 TAG_BUFFER (client_id stays a classic string)
#   (v0, without client_id, is ControlledShutdown v0's only)

def scan_request_header(frame, dict kinds):
    """((api key, version, correlation id, client id), offset of the body) of the request
    header at the start of `frame` (size prefix excluded), as pyk.protocol.header parses it.
    `kinds` maps each api key Kafka defines to (its ApiKey member, the first version with a
    client_id, the first flexible version: header v2); an unknown key, a truncated header or a
    client_id that is not UTF-8 raise ProtocolViolation."""
    cdef Py_buffer view
    cdef ReadCursor c
    cdef const uint8_t *base
    cdef const uint8_t *p
    cdef int16_t raw_key, version, length
    cdef int32_t correlation_id
    cdef object kind, client_id = None
    buffer_acquire(frame, &view, False)
    try:
        base = <const uint8_t *>view.buf
        cursor_init(&c, base, view.len)
        p = wire_take(&c, base, 8, "request header")
        raw_key = hton_load_i16(p)
        version = hton_load_i16(p + 2)
        correlation_id = hton_load_i32(p + 4)
        kind = kinds.get(raw_key)
        if kind is None:
            raise ProtocolViolation(f"unknown api key {raw_key} (version {version}, "
                                    f"correlation id {correlation_id})")
        if version >= kind[1]:
            length = hton_load_i16(wire_take(&c, base, 2, "client_id length"))
            if length >= 0:
                p = wire_take(&c, base, length, "client_id")
                try:
                    client_id = PyUnicode_DecodeUTF8(<const char *>p, length, NULL)
                except UnicodeDecodeError as exc:
                    raise ProtocolViolation(f"client_id is not UTF-8: {exc.reason}") from None
            if version >= kind[2]:
                wire_skip_tags(&c, base, "request header")
        return (kind[0], version, correlation_id, client_id), c.ptr - base
    finally:
        PyBuffer_Release(&view)


# Frame buffer (not a codec: what a large request frame is received into) -----------------

def frame_buffer(Py_ssize_t size):
    """A bytearray of `size` bytes for a large frame to be received into, left unzeroed: the
    socket overwrites every byte before the frame is handled, and bytearray(size) would write
    them all once more first (a memset per produce request, 3 % of the broker's CPU at 100 B
    over 8 partitions)."""
    if size < 0:
        raise ValueError(f"negative frame size {size}")
    return PyByteArray_FromStringAndSize(NULL, size)
