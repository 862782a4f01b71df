# Record compression: gzip / snappy / lz4 / zstd over the C libraries (c/codecs.c), with
# the GIL released, and recompression of a whole v2 batch.
#
# In a v2 batch only the records section (after the 61-byte header) is compressed; the
# header, record count included, stays readable, so recompression rebuilds the section
# and patches batchLength, the codec bits of attributes and the CRC.

from libc.stdint cimport INT32_MAX, SIZE_MAX
from libc.string cimport memcpy


cdef bytes codec_run(bint decompress, int codec, const uint8_t *p, Py_ssize_t n, Py_ssize_t max_size):
    cdef codecs_buf out
    cdef int rc
    cdef size_t limit = SIZE_MAX if max_size < 0 else <size_t>max_size
    codec_check(codec)
    out.data = NULL
    out.len = out.cap = 0
    try:
        if n > CODEC_NOGIL_THRESHOLD:
            with nogil:
                if decompress:
                    rc = codecs_decompress(codec, p, <size_t>n, limit, &out)
                else:
                    rc = codecs_compress(codec, p, <size_t>n, &out)
        elif decompress:
            rc = codecs_decompress(codec, p, <size_t>n, limit, &out)
        else:
            rc = codecs_compress(codec, p, <size_t>n, &out)
        if rc == CODECS_ERR_NOMEM:
            raise MemoryError(f"codec {codec}: out of memory for {n} input bytes")
        if rc == CODECS_ERR_CORRUPT:
            raise ValueError(f"codec {codec}: {n} bytes are not valid compressed data")
        if rc == CODECS_ERR_TOO_LARGE:
            raise ValueError(f"codec {codec}: output of {n} input bytes is larger than "
                             f"{'the codec allows' if max_size < 0 else max_size}")
        return PyBytes_FromStringAndSize(<char *>out.data, <Py_ssize_t>out.len)
    finally:
        codecs_buf_free(&out)


def compress(int codec, data):
    """data compressed with codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) in the framing
    Kafka clients read: gzip member, raw snappy, LZ4 frame, zstd frame."""
    cdef Py_buffer view
    codec_check(codec)
    buffer_acquire(data, &view, False)
    try:
        return codec_run(False, codec, <const uint8_t *>view.buf, view.len, -1)
    finally:
        PyBuffer_Release(&view)


def decompress(int codec, data, Py_ssize_t max_size=-1):
    """data decompressed with codec; snappy also takes the Java client's xerial framing,
    gzip/lz4/zstd concatenated members/frames.  ValueError when data is not valid for the
    codec or the output would exceed max_size (>= 0)."""
    cdef Py_buffer view
    codec_check(codec)
    buffer_acquire(data, &view, False)
    try:
        return codec_run(True, codec, <const uint8_t *>view.buf, view.len, max_size)
    finally:
        PyBuffer_Release(&view)


def recompress_batch(batch, int codec, Py_ssize_t max_decompressed=-1):
    """A copy of the v2 batch at the start of `batch` with its records section re-encoded
    with codec (0 = uncompressed): batchLength, the codec bits and the CRC are rewritten,
    every other header field is kept.  ValueError for an incomplete or non-v2 batch, an
    unknown codec, or a records section that does not decompress or whose output would
    exceed max_decompressed >= 0 bytes (decoding stops there, see validate_batch)."""
    cdef Py_buffer view
    cdef const uint8_t *p
    cdef uint8_t *q
    cdef int64_t size
    cdef int current
    cdef bytes records, section, result
    codec_check(codec)
    buffer_acquire(batch, &view, False)
    try:
        batch_require_header(&view, 0)
        p = <const uint8_t *>view.buf
        size = batch_size(p)
        if size < BATCH_HEADER_SIZE or size > view.len:
            raise ValueError(f"record batch of {size} bytes declared, {view.len} present")
        if p[BATCH_MAGIC_OFFSET] != BATCH_MAGIC_V2:
            raise ValueError(f"record batch magic {<int8_t>p[BATCH_MAGIC_OFFSET]}, expected 2")
        current = hton_load_i16(p + BATCH_ATTRIBUTES_OFFSET) & BATCH_ATTR_COMPRESSION_MASK
        codec_check(current)
        if current == CODEC_NONE:
            section = codec_run(False, codec, p + BATCH_HEADER_SIZE,
                                <Py_ssize_t>(size - BATCH_HEADER_SIZE), -1)
        else:
            records = codec_run(True, current, p + BATCH_HEADER_SIZE,
                                <Py_ssize_t>(size - BATCH_HEADER_SIZE), max_decompressed)
            section = codec_run(False, codec, <const uint8_t *>PyBytes_AS_STRING(records),
                                len(records), -1)
        records = None  # the decompressed copy is not needed any more
        if len(section) > INT32_MAX - BATCH_MIN_LENGTH:
            raise ValueError(f"recompressed records of {len(section)} bytes do not fit a batch")
        result = PyBytes_FromStringAndSize(NULL, BATCH_HEADER_SIZE + len(section))
        q = <uint8_t *>PyBytes_AS_STRING(result)
        memcpy(q, p, BATCH_HEADER_SIZE)
        memcpy(q + BATCH_HEADER_SIZE, PyBytes_AS_STRING(section), <size_t>len(section))
    finally:
        PyBuffer_Release(&view)
    hton_store_i32(q + BATCH_LENGTH_OFFSET, <int32_t>(BATCH_MIN_LENGTH + len(section)))
    hton_store_i16(q + BATCH_ATTRIBUTES_OFFSET, <int16_t>(
        (hton_load_i16(q + BATCH_ATTRIBUTES_OFFSET) & ~BATCH_ATTR_COMPRESSION_MASK) | codec))
    size = BATCH_HEADER_SIZE + len(section)
    if size > CRC32C_NOGIL_THRESHOLD:
        with nogil:
            hton_store_u32(q + BATCH_CRC_OFFSET, batch_compute_crc(q, size))
    else:
        hton_store_u32(q + BATCH_CRC_OFFSET, batch_compute_crc(q, size))
    return result
