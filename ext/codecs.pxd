# Declarations for include/codecs.h (implementation in c/codecs.c).
from libc.stdint cimport uint8_t


cdef extern from "codecs.h" nogil:
    enum:
        CODECS_OK
        CODECS_ERR_NOMEM
        CODECS_ERR_CORRUPT
        CODECS_ERR_TOO_LARGE
        CODECS_ERR_CODEC

    ctypedef struct codecs_buf:
        uint8_t *data            # malloc'd output
        size_t len               # bytes of output
        size_t cap               # bytes allocated

    void codecs_buf_free(codecs_buf *out)
    int codecs_compress(int codec, const uint8_t *src, size_t n, codecs_buf *out)
    int codecs_decompress(int codec, const uint8_t *src, size_t n, size_t max_out, codecs_buf *out)
    codecs_buf *codecs_scratch()     # this thread's reusable output, emptied; NULL without memory
    void codecs_scratch_done()       # after reading it: frees an oversized one
