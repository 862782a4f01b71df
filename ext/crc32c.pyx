# CRC-32C entry points.  Kafka checksums v2 batches with CRC-32C (KIP-98); the SSE4.2
# instruction is picked at import when the CPU has it, else slicing-by-8 tables.

crc32c_init()

CRC32C_HW = bool(crc32c_hw_available())


def crc32c(data, uint32_t value=0):
    """CRC-32C of data (any buffer); value chains: crc32c(b, crc32c(a)) == crc32c(a + b)."""
    cdef Py_buffer view
    cdef uint32_t crc
    buffer_acquire(data, &view, False)
    try:
        if view.len > CRC32C_NOGIL_THRESHOLD:
            with nogil:
                crc = crc32c_value(value, <const uint8_t *>view.buf, <size_t>view.len)
        else:
            crc = crc32c_value(value, <const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc


def crc32c_portable(data, uint32_t value=0):
    """crc32c() forced onto the table path, so tests and benchmarks can reach it on CPUs
    that have the instruction."""
    cdef Py_buffer view
    cdef uint32_t crc
    buffer_acquire(data, &view, False)
    try:
        if view.len > CRC32C_NOGIL_THRESHOLD:
            with nogil:
                crc = crc32c_table_value(value, <const uint8_t *>view.buf, <size_t>view.len)
        else:
            crc = crc32c_table_value(value, <const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return crc
