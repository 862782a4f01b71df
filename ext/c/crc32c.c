/* CRC-32C: SSE4.2 crc32 instruction (three interleaved streams) when the CPU has it,
 * slicing-by-8 tables otherwise.
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
/* The crc32 instruction has a latency of 3 cycles but a throughput of 1, so three
 * independent streams over adjacent blocks run about 3x faster than one.  The three
 * partial CRCs are then merged: appending n bytes to a message is a linear map on the
 * CRC register (multiplication by x^(8n) mod P), applied with four 256-entry tables per
 * block length (crc32c_shift).  Blocks: CRC32C_LONG bytes for big buffers, CRC32C_SHORT
 * for the rest; both powers of two (crc32c_zeros_op squares its way up to them). */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256
static uint32_t crc32c_long_shift[4][256];
static uint32_t crc32c_short_shift[4][256];

/* mat (32 columns) times vec over GF(2). */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1u)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    int n;
    for (n = 0; n < 32; n++)
        square[n] = gf2_times(mat, mat[n]);
}

/* op = the operator that appends len zero bytes (len a power of two) to a raw register. */
static void crc32c_zeros_op(uint32_t *op, size_t len)
{
    uint32_t one_bit[32], tmp[32];
    uint32_t row = 1;
    int n;
    /* One zero bit: shift right, folding the polynomial in when bit 0 falls out. */
    one_bit[0] = CRC32C_POLY;
    for (n = 1; n < 32; n++) {
        one_bit[n] = row;
        row <<= 1;
    }
    gf2_square(tmp, one_bit); /* 2 bits */
    gf2_square(op, tmp);      /* 4 bits */
    gf2_square(tmp, op);      /* 8 bits = 1 byte */
    memcpy(op, tmp, sizeof tmp);
    while (len > 1) {
        gf2_square(tmp, op);
        memcpy(op, tmp, sizeof tmp);
        len >>= 1;
    }
}

static void crc32c_shift_table(uint32_t table[4][256], size_t len)
{
    uint32_t op[32];
    uint32_t n;
    crc32c_zeros_op(op, len);
    for (n = 0; n < 256; n++) {
        table[0][n] = gf2_times(op, n);
        table[1][n] = gf2_times(op, n << 8);
        table[2][n] = gf2_times(op, n << 16);
        table[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t crc32c_shift(const uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xFFu] ^ table[1][(crc >> 8) & 0xFFu] ^ table[2][(crc >> 16) & 0xFFu]
           ^ table[3][crc >> 24];
}

/* Consume as many runs of 3 * block bytes (p 8-byte aligned) as fit, three streams at once. */
__attribute__((target("sse4.2")))
static inline uint64_t crc32c_sse42_blocks(uint64_t crc0, const uint8_t **pp, size_t *np, size_t block,
                                           const uint32_t shift[4][256])
{
    const uint8_t *p = *pp, *end;
    size_t n = *np;
    uint64_t crc1, crc2, w0, w1, w2;
    while (n >= 3 * block) {
        crc1 = crc2 = 0;
        end = p + block;
        do {
            memcpy(&w0, p, 8);
            memcpy(&w1, p + block, 8);
            memcpy(&w2, p + 2 * block, 8);
            crc0 = _mm_crc32_u64(crc0, w0);
            crc1 = _mm_crc32_u64(crc1, w1);
            crc2 = _mm_crc32_u64(crc2, w2);
            p += 8;
        } while (p < end);
        /* crc0 covered block 0; append block 1's bytes to it, then block 2's. */
        crc0 = crc32c_shift(shift, (uint32_t)crc0) ^ crc1;
        crc0 = crc32c_shift(shift, (uint32_t)crc0) ^ crc2;
        p += 2 * block;
        n -= 3 * block;
    }
    *pp = p;
    *np = n;
    return crc0;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42_value(uint32_t value, const uint8_t *p, size_t n)
{
    uint32_t crc32 = ~value;
    while (n && ((uintptr_t)p & 7u)) {
        crc32 = _mm_crc32_u8(crc32, *p++);
        n--;
    }
    {
        uint64_t crc0 = crc32, w0;
        crc0 = crc32c_sse42_blocks(crc0, &p, &n, CRC32C_LONG, crc32c_long_shift);
        crc0 = crc32c_sse42_blocks(crc0, &p, &n, CRC32C_SHORT, crc32c_short_shift);
        while (n >= 8) {
            memcpy(&w0, p, 8);
            crc0 = _mm_crc32_u64(crc0, w0);
            p += 8;
            n -= 8;
        }
        crc32 = (uint32_t)crc0;
    }
    while (n--)
        crc32 = _mm_crc32_u8(crc32, *p++);
    return ~crc32;
}
#endif

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
    crc32c_shift_table(crc32c_long_shift, CRC32C_LONG);
    crc32c_shift_table(crc32c_short_shift, CRC32C_SHORT);
    __builtin_cpu_init();
    crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
    crc32c_ready = 1;
}

uint32_t crc32c_value(uint32_t value, const uint8_t *p, size_t n)
{
#if PYK_X86_CRC
    if (PYK_LIKELY(crc32c_hw))
        return crc32c_sse42_value(value, p, n);
#endif
    return crc32c_table_value(value, p, n);
}
