/* CRC-32C: SSE4.2 crc32 instruction when the CPU has it, slicing-by-8 tables otherwise.
 *
 * The instruction is compiled for this one function with a target attribute, so the
 * extension itself needs no -msse4.2 and still loads on CPUs without it; the choice is made
 * at run time with __builtin_cpu_supports.
 */
#include <string.h>

#include "compat.h"
#include "crc32c.h"

#if PYK_X86_CRC
#  include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

/* crc32c_table[k][b]: CRC of byte b followed by k zero bytes (slicing-by-8). */
static uint32_t crc32c_table[8][256];
static int crc32c_ready = 0;
static int crc32c_hw = 0;

void crc32c_init(void)
{
    uint32_t b, k, crc;
    if (crc32c_ready)
        return;
    for (b = 0; b < 256; b++) {
        crc = b;
        for (k = 0; k < 8; k++)
            crc = (crc & 1u) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        crc32c_table[0][b] = crc;
    }
    for (b = 0; b < 256; b++) {
        crc = crc32c_table[0][b];
        for (k = 1; k < 8; k++) {
            crc = crc32c_table[0][crc & 0xFFu] ^ (crc >> 8);
            crc32c_table[k][b] = crc;
        }
    }
#if PYK_X86_CRC
    __builtin_cpu_init();
    crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
    crc32c_ready = 1;
}

int crc32c_hw_available(void)
{
    return crc32c_hw;
}

uint32_t crc32c_table_value(uint32_t value, const uint8_t *p, size_t n)
{
    uint32_t crc = ~value;
    uint64_t w;
    /* Byte at a time up to 8-byte alignment so the word loads below are aligned. */
    while (n && ((uintptr_t)p & 7u)) {
        crc = crc32c_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = crc32c_table[7][w & 0xFFu] ^ crc32c_table[6][(w >> 8) & 0xFFu]
            ^ crc32c_table[5][(w >> 16) & 0xFFu] ^ crc32c_table[4][(w >> 24) & 0xFFu]
            ^ crc32c_table[3][(w >> 32) & 0xFFu] ^ crc32c_table[2][(w >> 40) & 0xFFu]
            ^ crc32c_table[1][(w >> 48) & 0xFFu] ^ crc32c_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc32c_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

#if PYK_X86_CRC
__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42_value(uint32_t value, const uint8_t *p, size_t n)
{
    uint64_t w;
    uint32_t crc32 = ~value;
    while (n && ((uintptr_t)p & 7u)) {
        crc32 = _mm_crc32_u8(crc32, *p++);
        n--;
    }
#  if defined(__x86_64__)
    {
        uint64_t crc = crc32;
        while (n >= 8) {
            memcpy(&w, p, 8);
            crc = _mm_crc32_u64(crc, w);
            p += 8;
            n -= 8;
        }
        crc32 = (uint32_t)crc;
    }
#  else
    (void)w;
#  endif
    while (n--)
        crc32 = _mm_crc32_u8(crc32, *p++);
    return ~crc32;
}
#endif

uint32_t crc32c_value(uint32_t value, const uint8_t *p, size_t n)
{
#if PYK_X86_CRC
    if (PYK_LIKELY(crc32c_hw))
        return crc32c_sse42_value(value, p, n);
#endif
    return crc32c_table_value(value, p, n);
}
