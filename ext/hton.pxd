# Declarations for include/hton.h: big-endian loads/stores at any alignment.
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t

cdef extern from "hton.h" nogil:
    int16_t hton_load_i16(const uint8_t *p)
    int32_t hton_load_i32(const uint8_t *p)
    uint32_t hton_load_u32(const uint8_t *p)
    int64_t hton_load_i64(const uint8_t *p)
    void hton_store_i16(uint8_t *p, int16_t x)
    void hton_store_i32(uint8_t *p, int32_t x)
    void hton_store_u32(uint8_t *p, uint32_t x)
    void hton_store_i64(uint8_t *p, int64_t x)
