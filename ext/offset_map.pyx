# Log compaction: the key -> latest offset map and the record filter of the log cleaner.
#
# Kafka's Cleaner builds, over the dirty section of a log, a map from each key to the
# offset of its latest record (SkimpyOffsetMap: a fixed buffer of
# log.cleaner.dedupe.buffer.size bytes holding hash + offset per slot), then rewrites the
# segments keeping only records whose offset is >= the map's entry for their key.
#
#   OffsetMapSlot => hash: uint64 (xxhash64 of the key, 0 = free)  offset: int64
#
# Keys are stored only as 64-bit hashes: a map of 10 million keys collides with
# probability ~ n^2 / 2^65 ~ 3e-6, and a collision can only make the cleaner drop the
# older of two records (Kafka accepts the same risk with MD5 and 24-byte slots).
# Open addressing with double hashing over a prime number of slots, so every probe
# sequence visits every slot; the map counts as full at slots * load factor (Kafka's
# log.cleaner.io.buffer.load.factor, 0.9), beyond which probe chains grow quickly.
#
# Tombstones follow KIP-534: the first cleaning that keeps a tombstone stamps its batch with
# a delete horizon (now + delete.retention.ms in baseTimestamp, attribute bit 6, the
# records' timestamp deltas re-based); cleanings after the horizon drop the tombstones.
#
# Records are walked in the records section of a v2 batch (format in records.pyx);
# compressed batches are decompressed first (compress.pyx).  Walks over sections above
# OFFSET_MAP_NOGIL_THRESHOLD run without the GIL so the broker's event loop keeps
# serving while the cleaner thread hashes.
#
# Thread safety: one OffsetMap is used by one cleaner thread at a time.

from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef int keyed_read(ReadCursor *c, KeyedRecord *rec) noexcept nogil:
    cdef ReadCursor r
    cdef int32_t length, value_len, header_count, _h
    cdef const uint8_t *body
    rec.start = c.ptr
    if cursor_read_varint(c, &length) < 0:
        return -1
    body = cursor_read(c, length)
    if body == NULL:
        return -1
    rec.size = c.ptr - rec.start
    cursor_init(&r, body, length)
    if cursor_read(&r, 1) == NULL:                               # attributes
        return -1
    if cursor_read_varlong(&r, &rec.timestamp_delta) < 0:
        return -1
    rec.after_timestamp = r.ptr
    if cursor_read_varint(&r, &rec.offset_delta) < 0:
        return -1
    if cursor_read_varint(&r, &rec.key_len) < 0 or rec.key_len < -1:
        return -1
    if rec.key_len == -1:
        rec.key = NULL
    else:
        rec.key = cursor_read(&r, rec.key_len)
        if rec.key == NULL:
            return -1
    if cursor_read_varint(&r, &value_len) < 0 or value_len < -1:
        return -1
    rec.null_value = value_len == -1
    if value_len > 0 and cursor_read(&r, value_len) == NULL:
        return -1
    if cursor_read_varint(&r, &header_count) < 0 or header_count < 0:
        return -1
    for _h in range(header_count):
        if records_skip_bytes(&r, False) < 0 or records_skip_bytes(&r, True) < 0:
            return -1
    return 0 if r.remaining == 0 else -1


# Batch access shared by the entry points below

cdef class _Section:
    """The records section of one v2 batch, decompressed if needed, and its header fields."""
    cdef Py_buffer view
    cdef bint acquired
    cdef const uint8_t *header   # the 61-byte batch header
    cdef bytes plain             # decompressed records (keeps them alive), or None
    cdef const uint8_t *records
    cdef Py_ssize_t n            # bytes of records
    cdef int64_t base_offset
    cdef int64_t last_offset
    cdef int32_t count
    cdef int codec
    cdef bint control

    def __dealloc__(self):
        if self.acquired:
            PyBuffer_Release(&self.view)


cdef _Section section_open(object batch):
    """Acquire `batch` (a whole v2 batch at its start) and expose its records uncompressed;
    ValueError for a truncated or non-v2 batch or records that do not decompress."""
    cdef _Section s = _Section.__new__(_Section)
    cdef int64_t size
    buffer_acquire(batch, &s.view, False)
    s.acquired = True
    batch_require_header(&s.view, 0)
    s.header = <const uint8_t *>s.view.buf
    size = batch_size(s.header)
    if size < BATCH_HEADER_SIZE or size > s.view.len:
        raise ValueError(f"record batch of {size} bytes declared, {s.view.len} present")
    if s.header[BATCH_MAGIC_OFFSET] != BATCH_MAGIC_V2:
        raise ValueError(f"record batch magic {<int8_t>s.header[BATCH_MAGIC_OFFSET]}, expected 2")
    s.base_offset = hton_load_i64(s.header + BATCH_BASE_OFFSET_OFFSET)
    s.last_offset = s.base_offset + hton_load_i32(s.header + BATCH_LAST_OFFSET_DELTA_OFFSET)
    s.count = hton_load_i32(s.header + BATCH_RECORDS_COUNT_OFFSET)
    s.codec = hton_load_i16(s.header + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_COMPRESSION_MASK
    s.control = (hton_load_i16(s.header + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_CONTROL) != 0
    codec_check(s.codec)
    if s.count < 0:
        raise ValueError(f"record batch claims {s.count} records")
    if s.codec == CODEC_NONE:
        s.plain = None
        s.records = s.header + BATCH_HEADER_SIZE
        s.n = <Py_ssize_t>(size - BATCH_HEADER_SIZE)
    else:
        s.plain = codec_run(True, s.codec, s.header + BATCH_HEADER_SIZE,
                            <Py_ssize_t>(size - BATCH_HEADER_SIZE), -1)
        s.records = <const uint8_t *>PyBytes_AS_STRING(s.plain)
        s.n = len(s.plain)
    return s


cdef int section_malformed(_Section s) except -1:
    raise ValueError(f"records of the batch at offset {s.base_offset} do not parse "
                     f"({s.count} records claimed in {s.n} bytes)")


# Offset map

cdef Py_ssize_t offset_map_prime_at_most(Py_ssize_t n) noexcept:
    """Largest prime <= n (n >= 2), by trial division: ~sqrt(n) steps for a handful of
    candidates (prime gaps below 2^40 are < 800), once per map."""
    cdef Py_ssize_t candidate, d
    cdef bint prime
    candidate = n
    while candidate > 2:
        prime = candidate % 2 != 0
        d = 3
        while prime and d * d <= candidate:
            if candidate % d == 0:
                prime = False
            d += 2
        if prime:
            return candidate
        candidate -= 1
    return 2


cdef class OffsetMap:
    """Key -> latest offset map of the log cleaner in a fixed buffer (Kafka SkimpyOffsetMap).

    `memory` bytes hold memory // 16 slots (rounded down to a prime); at most
    slots * load_factor keys fit.  Keys are stored as xxhash64 values only.  Built by
    put_batch over the dirty section, read by filter_batch while rewriting, reused across
    passes after clear().
    """

    def __cinit__(self, Py_ssize_t memory, double load_factor=0.9):
        cdef Py_ssize_t slots = memory // OFFSET_MAP_SLOT_SIZE
        if slots < 2:
            raise ValueError(f"offset map needs at least {2 * OFFSET_MAP_SLOT_SIZE} bytes, got {memory}")
        if not 0.0 < load_factor <= 1.0:
            raise ValueError(f"load factor must be in (0, 1], got {load_factor}")
        self.slots = offset_map_prime_at_most(slots)
        self.max_entries = <Py_ssize_t>(<double>self.slots * load_factor)
        if self.max_entries < 1:
            raise ValueError(f"{self.slots} slots at load factor {load_factor} hold no key")
        self.slots_ = <OffsetMapSlot *>malloc(<size_t>self.slots * sizeof(OffsetMapSlot))
        if self.slots_ == NULL:
            raise MemoryError(f"offset map of {self.slots} slots")
        self.clear()

    def __dealloc__(self):
        free(self.slots_)

    def clear(self):
        """Empties the map (a new cleaning pass)."""
        cdef Py_ssize_t i
        for i in range(self.slots):
            self.slots_[i].hash = 0
        self.size = 0
        self.latest_offset = -1
        self.probes = 0

    @property
    def is_full(self):
        """True when no new key may be added."""
        return self.size >= self.max_entries

    cdef Py_ssize_t _find(self, uint64_t hash) noexcept nogil:
        """Slot holding `hash`, else the first free slot of its probe sequence, else -1."""
        cdef Py_ssize_t slots = self.slots
        cdef Py_ssize_t i = <Py_ssize_t>(hash % <uint64_t>slots)
        cdef Py_ssize_t step = 1 + <Py_ssize_t>((hash >> 32) % <uint64_t>(slots - 1))
        cdef Py_ssize_t _tries
        for _tries in range(slots):
            self.probes += 1
            if self.slots_[i].hash == hash or self.slots_[i].hash == 0:
                return i
            i += step
            if i >= slots:
                i -= slots
        return -1

    cdef int _put_hash(self, uint64_t hash, int64_t offset) noexcept nogil:
        """Stores hash -> offset; -1 (nothing stored) when the key is new and the map full."""
        cdef Py_ssize_t i = self._find(hash)
        if i < 0 or (self.slots_[i].hash == 0 and self.size >= self.max_entries):
            return -1
        if self.slots_[i].hash == 0:
            self.slots_[i].hash = hash
            self.size += 1
        self.slots_[i].offset = offset
        self.latest_offset = offset
        return 0

    cdef int64_t _get_hash(self, uint64_t hash) noexcept nogil:
        cdef Py_ssize_t i = self._find(hash)
        if i < 0 or self.slots_[i].hash == 0:
            return -1
        return self.slots_[i].offset

    cdef int _put_records(self, ReadCursor *c, int64_t base_offset, int32_t count, int64_t start_offset,
                          Py_ssize_t *put) noexcept nogil:
        """put_batch's walk: 0 complete, 1 map full, -1 malformed."""
        cdef KeyedRecord rec
        cdef int32_t _i
        cdef int64_t offset
        for _i in range(count):
            if keyed_read(c, &rec) < 0:
                return -1
            offset = base_offset + rec.offset_delta
            if rec.key == NULL or offset < start_offset:
                continue
            if self._put_hash(offset_map_hash(rec.key, rec.key_len), offset) < 0:
                return 1
            put[0] += 1
        return 0 if c.remaining == 0 else -1

    cdef int _filter_records(self, ReadCursor *c, int64_t base_offset, int32_t count, bint retain_deletes,
                             uint8_t *keep, Py_ssize_t *kept, Py_ssize_t *removed,
                             bint *kept_tombstone) noexcept nogil:
        """filter_batch's decisions, one flag per record in keep[]; -1 when malformed."""
        cdef KeyedRecord rec
        cdef int32_t i
        cdef int64_t offset
        cdef bint k
        for i in range(count):
            if keyed_read(c, &rec) < 0:
                return -1
            offset = base_offset + rec.offset_delta
            if offset > self.latest_offset:
                k = True                          # past the dirty section this map covers
            elif rec.key == NULL:
                k = False                         # Kafka drops keyless records when cleaning
            else:
                k = (offset >= self._get_hash(offset_map_hash(rec.key, rec.key_len))
                     and (retain_deletes or not rec.null_value))
            keep[i] = <uint8_t>k
            if k:
                kept[0] += 1
                if rec.null_value:
                    kept_tombstone[0] = True
            else:
                removed[0] += 1
        return 0 if c.remaining == 0 else -1

    def put(self, key, int64_t offset):
        """Records `offset` as the latest of `key`; ValueError when the key is new and the
        map is full."""
        cdef Py_buffer view
        buffer_acquire(key, &view, False)
        try:
            if self._put_hash(offset_map_hash(<const uint8_t *>view.buf, view.len), offset) < 0:
                raise ValueError(f"offset map full ({self.size} of {self.slots} slots)")
        finally:
            PyBuffer_Release(&view)

    def get(self, key):
        """The latest offset recorded for `key`, or -1."""
        cdef Py_buffer view
        buffer_acquire(key, &view, False)
        try:
            return self._get_hash(offset_map_hash(<const uint8_t *>view.buf, view.len))
        finally:
            PyBuffer_Release(&view)

    def put_batch(self, batch, int64_t start_offset):
        """Puts the key of every keyed record at or after start_offset of the v2 batch at
        the start of `batch` (Kafka Cleaner.buildOffsetMapForSegment); returns (records put,
        complete).  complete is False when the map filled up before the batch's end: the
        records from there on were not put.  A completed batch moves latest_offset to its
        last offset (if >= start_offset).  Control batches (transaction markers) carry no
        data keys and are skipped.  ValueError for a malformed batch."""
        cdef _Section s = section_open(batch)
        cdef ReadCursor c
        cdef Py_ssize_t put = 0
        cdef int status = 0      # 0 complete, 1 map full, -1 malformed
        if not s.control:
            cursor_init(&c, s.records, s.n)
            if s.n > OFFSET_MAP_NOGIL_THRESHOLD:
                with nogil:
                    status = self._put_records(&c, s.base_offset, s.count, start_offset, &put)
            else:
                status = self._put_records(&c, s.base_offset, s.count, start_offset, &put)
            if status < 0:
                section_malformed(s)
        if status == 0 and s.last_offset >= start_offset:
            self.latest_offset = s.last_offset
        return put, status == 0

    def filter_batch(self, batch, int64_t now_ms, int64_t delete_horizon_ms):
        """Which records of the v2 batch at the start of `batch` compaction keeps (Kafka
        Cleaner.shouldRetainRecord, MemoryRecords.filterTo): every record past latest_offset;
        else a keyed record whose offset is >= the map's for its key, and if it is a
        tombstone only until the batch's delete horizon (KIP-534).  Keyless records are
        dropped.  A batch that keeps a tombstone and has no horizon yet gets one:
        delete_horizon_ms goes into baseTimestamp with attribute bit 6, and the records'
        timestamp deltas are re-based so their timestamps do not change.

        Returns (kept, removed, rebuilt): rebuilt is None when the batch stays as it is or
        loses every record, else a copy with only the kept records, recompressed with the
        batch's codec, every other header field (base and last offset, producer fields,
        maxTimestamp) kept.  Control batches are kept whole.  ValueError when malformed."""
        cdef _Section s = section_open(batch)
        cdef ReadCursor c
        cdef Py_ssize_t kept = 0, removed = 0, written = 0
        cdef bint malformed = False, kept_tombstone = False, stamp
        cdef int16_t attributes = hton_load_i16(s.header + BATCH_ATTRIBUTES_OFFSET)
        cdef int64_t base_timestamp = hton_load_i64(s.header + BATCH_FIRST_TIMESTAMP_OFFSET)
        cdef bint has_horizon = (attributes & BATCH_ATTR_DELETE_HORIZON) != 0
        cdef bint retain_deletes = not has_horizon or now_ms < base_timestamp
        cdef int64_t new_base
        cdef uint8_t *keep
        cdef uint8_t *out = NULL
        cdef bytes section, result
        cdef uint8_t *q
        cdef int64_t size
        if s.control:
            return s.count, 0, None
        keep = <uint8_t *>malloc(<size_t>s.count + 1)
        if keep == NULL:
            raise MemoryError(f"filter flags for {s.count} records")
        try:
            cursor_init(&c, s.records, s.n)
            if s.n > OFFSET_MAP_NOGIL_THRESHOLD:
                with nogil:
                    malformed = self._filter_records(&c, s.base_offset, s.count, retain_deletes, keep,
                                                     &kept, &removed, &kept_tombstone) < 0
            else:
                malformed = self._filter_records(&c, s.base_offset, s.count, retain_deletes, keep,
                                                 &kept, &removed, &kept_tombstone) < 0
            if malformed:
                section_malformed(s)
            stamp = kept_tombstone and not has_horizon
            if kept == 0 or (removed == 0 and not stamp):
                return kept, removed, None
            new_base = delete_horizon_ms if stamp else base_timestamp
            # A re-based record may grow by a longer timestampDelta (<= 10 bytes) and length (<= 5).
            out = <uint8_t *>malloc(<size_t>(s.n + 15 * <Py_ssize_t>kept + 1))
            if out == NULL:
                raise MemoryError(f"filter buffer for {s.n} bytes")
            cursor_init(&c, s.records, s.n)
            if s.n > OFFSET_MAP_NOGIL_THRESHOLD:
                with nogil:
                    written = keyed_copy(&c, s.count, keep, base_timestamp - new_base, out)
            else:
                written = keyed_copy(&c, s.count, keep, base_timestamp - new_base, out)
            if s.codec == CODEC_NONE:
                section = PyBytes_FromStringAndSize(<char *>out, written)
            else:
                section = codec_run(False, s.codec, out, written, -1)
        finally:
            free(keep)
            free(out)
        size = BATCH_HEADER_SIZE + len(section)
        result = PyBytes_FromStringAndSize(NULL, size)
        q = <uint8_t *>PyBytes_AS_STRING(result)
        memcpy(q, s.header, BATCH_HEADER_SIZE)
        memcpy(q + BATCH_HEADER_SIZE, PyBytes_AS_STRING(section), <size_t>len(section))
        hton_store_i32(q + BATCH_LENGTH_OFFSET, <int32_t>(size - BATCH_LOG_OVERHEAD))
        hton_store_i32(q + BATCH_RECORDS_COUNT_OFFSET, <int32_t>kept)
        if stamp:
            hton_store_i16(q + BATCH_ATTRIBUTES_OFFSET, <int16_t>(attributes | BATCH_ATTR_DELETE_HORIZON))
            hton_store_i64(q + BATCH_FIRST_TIMESTAMP_OFFSET, new_base)
        if size > CRC32C_NOGIL_THRESHOLD:
            with nogil:
                hton_store_u32(q + BATCH_CRC_OFFSET, batch_compute_crc(q, size))
        else:
            hton_store_u32(q + BATCH_CRC_OFFSET, batch_compute_crc(q, size))
        return kept, removed, result


cdef Py_ssize_t keyed_copy(ReadCursor *c, int32_t count, const uint8_t *keep, int64_t rebase,
                           uint8_t *out) noexcept nogil:
    cdef KeyedRecord rec
    cdef int32_t i
    cdef Py_ssize_t written = 0, rest
    cdef int64_t delta
    for i in range(count):
        if keyed_read(c, &rec) < 0:
            return -1
        if not keep[i]:
            continue
        if rebase == 0:
            memcpy(out + written, rec.start, <size_t>rec.size)
            written += rec.size
            continue
        #   length: varint  attributes: int8  timestampDelta: varlong  (offsetDelta ... as is)
        delta = rec.timestamp_delta + rebase
        rest = (rec.start + rec.size) - rec.after_timestamp
        written += varint_write(out + written, 1 + varint_len(delta) + rest)
        out[written] = 0                                            # attributes: unused
        written += 1
        written += varint_write(out + written, delta)
        memcpy(out + written, rec.after_timestamp, <size_t>rest)
        written += rest
    return written


cdef int keyed_count_null(ReadCursor *c, int32_t count, Py_ssize_t *nulls) noexcept nogil:
    cdef KeyedRecord rec
    cdef int32_t _i
    for _i in range(count):
        if keyed_read(c, &rec) < 0:
            return -1
        if rec.key == NULL:
            nulls[0] += 1
    return 0 if c.remaining == 0 else -1


def count_null_keys(batch):
    """Number of records with a null key in the v2 batch at the start of `batch`
    (decompressing it if needed); compacted topics reject such batches.  Control batches
    count 0.  ValueError for a malformed batch."""
    cdef _Section s = section_open(batch)
    cdef ReadCursor c
    cdef Py_ssize_t nulls = 0
    cdef bint malformed = False
    if s.control:
        return 0
    cursor_init(&c, s.records, s.n)
    if s.n > OFFSET_MAP_NOGIL_THRESHOLD:
        with nogil:
            malformed = keyed_count_null(&c, s.count, &nulls) < 0
    else:
        malformed = keyed_count_null(&c, s.count, &nulls) < 0
    if malformed:
        section_malformed(s)
    return nulls
