# Codec entry points for C callers: bytes out, ValueError / MemoryError on failure.
from libc.stdint cimport uint8_t


# Compress (decompress=False) or decompress p[0:n] with codec; max_size < 0 means no
# limit on the decompressed size.
cdef bytes codec_run(bint decompress, int codec, const uint8_t *p, Py_ssize_t n, Py_ssize_t max_size)


cdef inline int codec_check(int codec) except -1:
    """ValueError unless codec is 0..4."""
    if codec < CODEC_NONE or codec > CODEC_ZSTD:
        raise ValueError(f"unknown compression codec {codec} (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")
    return 0
