# CRC-32C: declarations for include/crc32c.h (implementation in c/crc32c.c).
from libc.stdint cimport uint8_t, uint32_t


cdef extern from "crc32c.h" nogil:
    void crc32c_init()
    int crc32c_hw_available()
    uint32_t crc32c_value(uint32_t value, const uint8_t *p, size_t n)
    uint32_t crc32c_table_value(uint32_t value, const uint8_t *p, size_t n)
