# Codec entry points for C callers: bytes out, ValueError / MemoryError on failure.
from libc.stdint cimport uint8_t


# Compress (decompress=False) or decompress p[0:n] with codec; max_size < 0 means no
# limit on the decompressed size.
cdef bytes codec_run(bint decompress, int codec, const uint8_t *p, Py_ssize_t n, Py_ssize_t max_size)
