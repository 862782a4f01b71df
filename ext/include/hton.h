/* Big-endian loads and stores at unaligned addresses.
 *
 * Kafka's wire format and its index files are big-endian.  memcpy + bswap compiles to a
 * single movbe/mov+bswap on x86-64 and is safe at any alignment (record batches in a
 * request frame or an mmap'd segment start at arbitrary byte positions).
 */
#ifndef PYK_HTON_H
#define PYK_HTON_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#  define PYK_BE16(x) (x)
#  define PYK_BE32(x) (x)
#  define PYK_BE64(x) (x)
#else
#  define PYK_BE16(x) __builtin_bswap16(x)
#  define PYK_BE32(x) __builtin_bswap32(x)
#  define PYK_BE64(x) __builtin_bswap64(x)
#endif

static inline int16_t hton_load_i16(const uint8_t *p) {
    uint16_t v; memcpy(&v, p, 2); return (int16_t)PYK_BE16(v);
}
static inline int32_t hton_load_i32(const uint8_t *p) {
    uint32_t v; memcpy(&v, p, 4); return (int32_t)PYK_BE32(v);
}
static inline uint32_t hton_load_u32(const uint8_t *p) {
    uint32_t v; memcpy(&v, p, 4); return PYK_BE32(v);
}
static inline int64_t hton_load_i64(const uint8_t *p) {
    uint64_t v; memcpy(&v, p, 8); return (int64_t)PYK_BE64(v);
}
static inline void hton_store_i16(uint8_t *p, int16_t x) {
    uint16_t v = PYK_BE16((uint16_t)x); memcpy(p, &v, 2);
}
static inline void hton_store_i32(uint8_t *p, int32_t x) {
    uint32_t v = PYK_BE32((uint32_t)x); memcpy(p, &v, 4);
}
static inline void hton_store_u32(uint8_t *p, uint32_t x) {
    uint32_t v = PYK_BE32(x); memcpy(p, &v, 4);
}
static inline void hton_store_i64(uint8_t *p, int64_t x) {
    uint64_t v = PYK_BE64((uint64_t)x); memcpy(p, &v, 8);
}

#endif /* PYK_HTON_H */
