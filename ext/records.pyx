# Record iteration inside a batch, for validation.
#
# Record v2 (KIP-98), https://kafka.apache.org/documentation/#record
#
#   Record =>
#     length: varint                   bytes of the record after this field
#     attributes: int8                 unused, written as 0
#     timestampDelta: varlong          relative to the batch's baseTimestamp
#     offsetDelta: varint              relative to baseOffset; i for the i-th record
#     keyLength: varint                -1 for a null key
#     key: byte[keyLength]
#     valueLength: varint              -1 for a null value (a tombstone)
#     value: byte[valueLength]
#     headers: varint count, then Header*
#
#   Header =>
#     headerKeyLength: varint          never null
#     headerKey: String
#     headerValueLength: varint        -1 for a null value
#     Value: byte[headerValueLength]
#
# A batch whose CRC matched but whose records do not parse was built wrong by the client,
# not damaged on the way, so every failure here is INVALID_RECORD, as Kafka's
# DefaultRecord.readFrom raises InvalidRecordException ("Found invalid record structure",
# "Invalid record size", "Incorrect declared batch size").


cdef int records_walk(const uint8_t *p, Py_ssize_t n, int32_t count) noexcept nogil:
    cdef ReadCursor batch, rec
    cdef const uint8_t *body
    cdef int32_t i, _h, length, offset_delta, header_count
    cdef int64_t timestamp_delta
    cursor_init(&batch, p, n)
    for i in range(count):
        if cursor_read_varint(&batch, &length) < 0:
            return ERR_INVALID_RECORD
        body = cursor_read(&batch, length)
        if body == NULL:
            return ERR_INVALID_RECORD
        # Parse inside the record's own length so a field cannot run into the next record.
        cursor_init(&rec, body, length)
        if cursor_read(&rec, 1) == NULL:                          # attributes
            return ERR_INVALID_RECORD
        if cursor_read_varlong(&rec, &timestamp_delta) < 0:
            return ERR_INVALID_RECORD
        if cursor_read_varint(&rec, &offset_delta) < 0 or offset_delta != i:
            return ERR_INVALID_RECORD
        if records_skip_bytes(&rec, True) < 0:                   # key
            return ERR_INVALID_RECORD
        if records_skip_bytes(&rec, True) < 0:                   # value
            return ERR_INVALID_RECORD
        if cursor_read_varint(&rec, &header_count) < 0 or header_count < 0:
            return ERR_INVALID_RECORD
        for _h in range(header_count):
            if records_skip_bytes(&rec, False) < 0:              # header key
                return ERR_INVALID_RECORD
            if records_skip_bytes(&rec, True) < 0:               # header value
                return ERR_INVALID_RECORD
        if rec.remaining != 0:
            return ERR_INVALID_RECORD
    # Bytes left over after `count` records: the declared count is wrong.
    if batch.remaining != 0:
        return ERR_INVALID_RECORD
    return ERR_NONE
