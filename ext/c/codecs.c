/* Compression codecs for Kafka record batches (see include/codecs.h).
 *
 * Output sizes: compression allocates the library's worst-case bound once; decompression
 * does not trust sizes written in the input and grows its buffer geometrically, checking
 * the caller's limit, so a small "zip bomb" batch cannot allocate more than asked for.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codecs.h"
#include "compat.h"
#include "hton.h"

/* First guess for decompressed sizes: this many times the input, at least MIN. */
#define CODECS_GUESS_FACTOR 4
#define CODECS_GUESS_MIN 4096
/* zlib counts in uInt: feed it at most this much per call. */
#define CODECS_ZLIB_CHUNK ((size_t)UINT_MAX)
/* The Java client's snappy framing (xerial snappy-java SnappyOutputStream): magic,
 * int32 version, int32 compatible version, then [int32 length, snappy block]*. */
static const uint8_t XERIAL_MAGIC[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
/* A thread's scratch output above this size is freed after use rather than kept. */
#define CODECS_SCRATCH_KEEP ((size_t)16 << 20)

/* Per-thread state reused across calls: the decoders' contexts (creating a zstd context
 * costs more than decoding a small batch) and the scratch output of codecs_scratch (a fresh
 * megabyte-sized buffer per batch is a page fault per 4 KiB).  Freed when the thread ends. */
typedef struct {
    codecs_buf scratch;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
} codecs_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_free(void *arg)
{
    codecs_tls *tls = (codecs_tls *)arg;
    codecs_buf_free(&tls->scratch);
    LZ4F_freeDecompressionContext(tls->lz4);
    ZSTD_freeDCtx(tls->zstd);
    free(tls);
}

static void tls_init(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

/* This thread's state, NULL if it cannot be allocated. */
static codecs_tls *tls_get(void)
{
    codecs_tls *tls;
    pthread_once(&tls_once, tls_init);
    if (!tls_key_ok)
        return NULL;
    tls = (codecs_tls *)pthread_getspecific(tls_key);
    if (tls == NULL) {
        tls = (codecs_tls *)calloc(1, sizeof *tls);
        if (tls == NULL)
            return NULL;
        if (pthread_setspecific(tls_key, tls) != 0) {
            free(tls);
            return NULL;
        }
    }
    return tls;
}
/* zstd level 3 is the library default and what Kafka's producer uses. */
#define CODECS_ZSTD_LEVEL 3

void codecs_buf_free(codecs_buf *out)
{
    free(out->data);
    out->data = NULL;
    out->len = out->cap = 0;
}

/* Make room for at least `need` bytes in total; geometric growth, capped at max_out. */
static int codecs_reserve(codecs_buf *out, size_t need, size_t max_out)
{
    size_t cap;
    uint8_t *grown;
    if (need <= out->cap)
        return CODECS_OK;
    if (need > max_out)
        return CODECS_ERR_TOO_LARGE;
    cap = out->cap ? out->cap : CODECS_GUESS_MIN;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > max_out)
        cap = max_out;
    grown = (uint8_t *)realloc(out->data, cap ? cap : 1);
    if (grown == NULL)
        return CODECS_ERR_NOMEM;
    out->data = grown;
    out->cap = cap;
    return CODECS_OK;
}

/* Room for at least one more byte than now (the streaming decoders' "output full"). */
static int codecs_grow(codecs_buf *out, size_t max_out)
{
    return codecs_reserve(out, out->cap + 1, max_out);
}

static size_t codecs_guess(size_t n, size_t max_out)
{
    size_t guess = n > SIZE_MAX / CODECS_GUESS_FACTOR ? SIZE_MAX : n * CODECS_GUESS_FACTOR;
    if (guess < CODECS_GUESS_MIN)
        guess = CODECS_GUESS_MIN;
    return guess < max_out ? guess : max_out;
}

/* gzip ------------------------------------------------------------------------------ */

static int gzip_compress(const uint8_t *src, size_t n, codecs_buf *out)
{
    z_stream zs;
    int ret, rc = CODECS_OK;
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16: a gzip wrapper, as Java's GZIPOutputStream writes; level 6. */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return CODECS_ERR_NOMEM;
    if ((rc = codecs_reserve(out, (size_t)deflateBound(&zs, (uLong)n), SIZE_MAX)) != CODECS_OK)
        goto done;
    zs.next_in = (Bytef *)(uintptr_t)src;
    for (;;) {
        size_t in_left = n - (size_t)((const uint8_t *)zs.next_in - src);
        size_t out_left = out->cap - out->len;
        zs.avail_in = (uInt)(in_left < CODECS_ZLIB_CHUNK ? in_left : CODECS_ZLIB_CHUNK);
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out_left < CODECS_ZLIB_CHUNK ? out_left : CODECS_ZLIB_CHUNK);
        ret = deflate(&zs, zs.avail_in == in_left ? Z_FINISH : Z_NO_FLUSH);
        out->len = (size_t)(zs.next_out - out->data);
        if (ret == Z_STREAM_END)
            break;
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            rc = CODECS_ERR_NOMEM;
            break;
        }
        if (out->len == out->cap && (rc = codecs_grow(out, SIZE_MAX)) != CODECS_OK)
            break;
    }
done:
    deflateEnd(&zs);
    return rc;
}

static int gzip_decompress(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    z_stream zs;
    int ret, rc;
    size_t in_left, out_left;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return CODECS_ERR_NOMEM;
    if ((rc = codecs_reserve(out, codecs_guess(n, max_out), max_out)) != CODECS_OK)
        goto done;
    zs.next_in = (Bytef *)(uintptr_t)src;
    for (;;) {
        in_left = n - (size_t)((const uint8_t *)zs.next_in - src);
        out_left = out->cap - out->len;
        zs.avail_in = (uInt)(in_left < CODECS_ZLIB_CHUNK ? in_left : CODECS_ZLIB_CHUNK);
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out_left < CODECS_ZLIB_CHUNK ? out_left : CODECS_ZLIB_CHUNK);
        ret = inflate(&zs, Z_NO_FLUSH);
        out->len = (size_t)(zs.next_out - out->data);
        in_left = n - (size_t)((const uint8_t *)zs.next_in - src);
        if (ret == Z_STREAM_END) {
            if (in_left == 0)
                break;
            /* Concatenated gzip members decode as one stream (Java's GZIPInputStream and
             * Python's gzip module do the same); other trailing bytes are corrupt. */
            if (in_left < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
                rc = CODECS_ERR_CORRUPT;
                break;
            }
            inflateReset(&zs);
            continue;
        }
        if (ret == Z_MEM_ERROR) {
            rc = CODECS_ERR_NOMEM;
            break;
        }
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            rc = CODECS_ERR_CORRUPT;
            break;
        }
        if (out->len == out->cap) {
            if ((rc = codecs_grow(out, max_out)) != CODECS_OK)
                break;
        } else if (in_left == 0) {
            rc = CODECS_ERR_CORRUPT; /* input ended inside the stream */
            break;
        }
    }
done:
    inflateEnd(&zs);
    return rc;
}

/* snappy ---------------------------------------------------------------------------- */

static int snappy_block_decompress(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    size_t size;
    int rc;
    if (snappy_uncompressed_length((const char *)src, n, &size) != SNAPPY_OK)
        return CODECS_ERR_CORRUPT;
    if (size > max_out - out->len)
        return CODECS_ERR_TOO_LARGE;
    if ((rc = codecs_reserve(out, out->len + size, max_out)) != CODECS_OK)
        return rc;
    if (snappy_uncompress((const char *)src, n, (char *)out->data + out->len, &size) != SNAPPY_OK)
        return CODECS_ERR_CORRUPT;
    out->len += size;
    return CODECS_OK;
}

static int snappy_decompress_any(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    size_t pos, block;
    int rc;
    if (n < XERIAL_HEADER_SIZE || memcmp(src, XERIAL_MAGIC, sizeof XERIAL_MAGIC) != 0)
        return snappy_block_decompress(src, n, max_out, out);
    /* librdkafka and the Java client accept either; the version fields are not checked,
     * as snappy-java itself only checks the magic. */
    if ((rc = codecs_reserve(out, codecs_guess(n, max_out), max_out)) != CODECS_OK)
        return rc;
    for (pos = XERIAL_HEADER_SIZE; pos < n; pos += block) {
        if (n - pos < 4)
            return CODECS_ERR_CORRUPT;
        block = (size_t)hton_load_u32(src + pos);
        pos += 4;
        if (block > n - pos)
            return CODECS_ERR_CORRUPT;
        if ((rc = snappy_block_decompress(src + pos, block, max_out, out)) != CODECS_OK)
            return rc;
    }
    return CODECS_OK;
}

static int snappy_compress_plain(const uint8_t *src, size_t n, codecs_buf *out)
{
    size_t size;
    int rc;
    /* The format stores the length as a varint32. */
    if (n > UINT32_MAX)
        return CODECS_ERR_TOO_LARGE;
    size = snappy_max_compressed_length(n);
    if ((rc = codecs_reserve(out, size, SIZE_MAX)) != CODECS_OK)
        return rc;
    if (snappy_compress((const char *)src, n, (char *)out->data, &size) != SNAPPY_OK)
        return CODECS_ERR_NOMEM;
    out->len = size;
    return CODECS_OK;
}

/* lz4 ------------------------------------------------------------------------------- */

static int lz4_compress(const uint8_t *src, size_t n, codecs_buf *out)
{
    LZ4F_preferences_t prefs;
    size_t size;
    int rc;
    /* Independent 64 KiB blocks, no content size or checksum: Kafka's Java reader
     * (Lz4BlockInputStream) decompresses every block on its own, so linked blocks would
     * not decode there; librdkafka writes the same shape. */
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size = LZ4F_compressFrameBound(n, &prefs);
    if ((rc = codecs_reserve(out, size, SIZE_MAX)) != CODECS_OK)
        return rc;
    size = LZ4F_compressFrame(out->data, out->cap, src, n, &prefs);
    if (LZ4F_isError(size))
        return CODECS_ERR_NOMEM;
    out->len = size;
    return CODECS_OK;
}

static int lz4_decompress(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    codecs_tls *tls = tls_get();
    LZ4F_dctx *dctx;
    size_t pos = 0, in_size, out_size, hint = 1;
    int rc;
    if (tls == NULL)
        return CODECS_ERR_NOMEM;
    if (tls->lz4 == NULL && LZ4F_isError(LZ4F_createDecompressionContext(&tls->lz4, LZ4F_VERSION)))
        return CODECS_ERR_NOMEM;
    dctx = tls->lz4;
    LZ4F_resetDecompressionContext(dctx); /* a failed call may have left it mid-frame */
    if ((rc = codecs_reserve(out, codecs_guess(n, max_out), max_out)) != CODECS_OK)
        return rc;
    /* hint == 0 means a frame just ended; more input starts another frame. */
    while (pos < n || hint != 0) {
        if (pos == n) {
            rc = CODECS_ERR_CORRUPT; /* input ended inside a frame */
            break;
        }
        if (out->len == out->cap && (rc = codecs_grow(out, max_out)) != CODECS_OK)
            break;
        in_size = n - pos;
        out_size = out->cap - out->len;
        hint = LZ4F_decompress(dctx, out->data + out->len, &out_size, src + pos, &in_size, NULL);
        if (LZ4F_isError(hint)) {
            rc = CODECS_ERR_CORRUPT;
            break;
        }
        pos += in_size;
        out->len += out_size;
        if (in_size == 0 && out_size == 0 && out->len < out->cap) {
            rc = CODECS_ERR_CORRUPT; /* no progress with room on both sides */
            break;
        }
    }
    return rc;
}

/* zstd ------------------------------------------------------------------------------ */

static int zstd_compress(const uint8_t *src, size_t n, codecs_buf *out)
{
    size_t size = ZSTD_compressBound(n);
    int rc;
    if ((rc = codecs_reserve(out, size, SIZE_MAX)) != CODECS_OK)
        return rc;
    size = ZSTD_compress(out->data, out->cap, src, n, CODECS_ZSTD_LEVEL);
    if (ZSTD_isError(size))
        return CODECS_ERR_NOMEM;
    out->len = size;
    return CODECS_OK;
}

static int zstd_decompress(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    codecs_tls *tls = tls_get();
    ZSTD_DCtx *dctx;
    ZSTD_inBuffer in = {src, n, 0};
    ZSTD_outBuffer ob;
    size_t hint = 1;
    int rc;
    if (tls == NULL)
        return CODECS_ERR_NOMEM;
    if (tls->zstd == NULL && (tls->zstd = ZSTD_createDCtx()) == NULL)
        return CODECS_ERR_NOMEM;
    dctx = tls->zstd;
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only); /* a failed call may have left it mid-frame */
    if ((rc = codecs_reserve(out, codecs_guess(n, max_out), max_out)) != CODECS_OK)
        return rc;
    /* Streaming, so frames without a content size (zstd-jni's output stream) decode too;
     * hint == 0 marks the end of a frame, further input is the next frame. */
    while (in.pos < in.size || hint != 0) {
        if (in.pos == in.size && out->len < out->cap) {
            rc = CODECS_ERR_CORRUPT; /* input ended inside a frame */
            break;
        }
        if (out->len == out->cap && (rc = codecs_grow(out, max_out)) != CODECS_OK)
            break;
        ob.dst = out->data;
        ob.size = out->cap;
        ob.pos = out->len;
        hint = ZSTD_decompressStream(dctx, &ob, &in);
        out->len = ob.pos;
        if (ZSTD_isError(hint)) {
            rc = ZSTD_getErrorCode(hint) == ZSTD_error_memory_allocation ? CODECS_ERR_NOMEM
                                                                         : CODECS_ERR_CORRUPT;
            break;
        }
    }
    /* A frame whose header declares no (or a false) content size is decoded through the
     * context's own window buffer, sized by the frame's window (up to zstd's default limit
     * of 2^27 bytes) and filled as far as the output got: after a bomb that is megabytes the
     * thread would keep, so a context grown past what the scratch keeps is dropped. */
    if (ZSTD_sizeof_DCtx(dctx) > CODECS_SCRATCH_KEEP) {
        ZSTD_freeDCtx(dctx);
        tls->zstd = NULL;
    }
    return rc;
}

/* dispatch -------------------------------------------------------------------------- */

static int copy_bytes(const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    int rc;
    if ((rc = codecs_reserve(out, n, max_out)) != CODECS_OK)
        return rc;
    if (n)
        memcpy(out->data, src, n);
    out->len = n;
    return CODECS_OK;
}

int codecs_compress(int codec, const uint8_t *src, size_t n, codecs_buf *out)
{
    switch (codec) {
    case CODECS_NONE:
        return copy_bytes(src, n, SIZE_MAX, out);
    case CODECS_GZIP:
        return gzip_compress(src, n, out);
    case CODECS_SNAPPY:
        return snappy_compress_plain(src, n, out);
    case CODECS_LZ4:
        return lz4_compress(src, n, out);
    case CODECS_ZSTD:
        return zstd_compress(src, n, out);
    default:
        return CODECS_ERR_CODEC;
    }
}

int codecs_decompress(int codec, const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
{
    /* The decoders may fill one byte past max_out: that is how "too large" is told apart
     * from "exactly max_out", and it lets an empty result fit a limit of 0. */
    size_t limit = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
    int rc;
    switch (codec) {
    case CODECS_NONE:
        rc = copy_bytes(src, n, limit, out);
        break;
    case CODECS_GZIP:
        rc = gzip_decompress(src, n, limit, out);
        break;
    case CODECS_SNAPPY:
        rc = snappy_decompress_any(src, n, limit, out);
        break;
    case CODECS_LZ4:
        rc = lz4_decompress(src, n, limit, out);
        break;
    case CODECS_ZSTD:
        rc = zstd_decompress(src, n, limit, out);
        break;
    default:
        return CODECS_ERR_CODEC;
    }
    if (rc == CODECS_OK && out->len > max_out)
        rc = CODECS_ERR_TOO_LARGE;
    return rc;
}

codecs_buf *codecs_scratch(void)
{
    codecs_tls *tls = tls_get();
    if (tls == NULL)
        return NULL;
    tls->scratch.len = 0;
    return &tls->scratch;
}

void codecs_scratch_done(void)
{
    codecs_tls *tls = tls_get();
    if (tls != NULL && tls->scratch.cap > CODECS_SCRATCH_KEEP)
        codecs_buf_free(&tls->scratch);
}
