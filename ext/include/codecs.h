/* Kafka's record compression codecs over the system libraries: gzip (zlib), snappy
 * (libsnappy's C API, plus the xerial framing of the Java client on input), lz4 (LZ4 frame)
 * and zstd (zstd frame).  Plain C with no Python calls, so Cython runs it without the GIL.
 */
#ifndef PYK_CODECS_H
#define PYK_CODECS_H

#include <stddef.h>
#include <stdint.h>

/* Codec ids as in the batch attributes' low three bits. */
enum {
    CODECS_NONE = 0,
    CODECS_GZIP = 1,
    CODECS_SNAPPY = 2,
    CODECS_LZ4 = 3,
    CODECS_ZSTD = 4
};

/* Results: 0 ok, or one of these. */
enum {
    CODECS_OK = 0,
    CODECS_ERR_NOMEM = -1,     /* malloc failed */
    CODECS_ERR_CORRUPT = -2,   /* input is not valid data for the codec */
    CODECS_ERR_TOO_LARGE = -3, /* output would exceed the caller's limit or the codec's */
    CODECS_ERR_CODEC = -4      /* unknown codec id */
};

/* A malloc'd output buffer: data[0:len] holds the result; release with codecs_buf_free. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} codecs_buf;

void codecs_buf_free(codecs_buf *out);
/* Compress src[0:n] with codec into *out (zeroed by the caller). */
int codecs_compress(int codec, const uint8_t *src, size_t n, codecs_buf *out);
/* Decompress src[0:n] into *out (zeroed by the caller); fail with CODECS_ERR_TOO_LARGE
 * rather than produce more than max_out bytes. */
int codecs_decompress(int codec, const uint8_t *src, size_t n, size_t max_out, codecs_buf *out);
/* This thread's reusable output buffer, emptied (NULL if it cannot be allocated): pass it to
 * codecs_decompress for a result that is only read before the thread's next call, and call
 * codecs_scratch_done after, which frees it when a large result grew it past a few MiB. */
codecs_buf *codecs_scratch(void);
void codecs_scratch_done(void);

#endif /* PYK_CODECS_H */
