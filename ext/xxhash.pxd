# Declarations for the xxHash C library (Debian libxxhash-dev, linked as -lxxhash).
from libc.stdint cimport uint64_t

cdef extern from "xxhash.h" nogil:
    ctypedef uint64_t XXH64_hash_t
    XXH64_hash_t XXH64(const void *data, size_t length, XXH64_hash_t seed)
