# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""pyk._native: CRC32C, record batch validation and offset rewrite, segment scanning,
index search, compression codecs and the log cleaner's offset map, the byte-level hot paths of the broker.

One compilation unit built from small files (STYLE practice 1); every function here has a
pure-Python twin with the same name in tests/ref/.
"""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

include "crc32c.pyx"
include "varint.pyx"
include "records.pyx"
include "batch.pyx"
include "layout.pyx"
include "index.pyx"
include "compress.pyx"
include "offset_map.pyx"
include "uring.pyx"
include "wire.pyx"
include "metrics.pyx"
