# Declarations of pyk._native, the contract of each native piece.  One compilation unit:
# _native.pyx includes the matching .pyx files (STYLE practice 1).  Cython finds this file
# through the one-line shim pyk/_native.pxd (it looks up a module's .pxd by its full
# dotted name).
include "consts.pxi"
include "hton.pxd"
include "cursor.pxd"
include "varint.pxd"
include "crc32c.pxd"
include "records.pxd"
include "batch.pxd"
include "index.pxd"
include "codecs.pxd"
include "compress.pxd"
include "xxhash.pxd"
include "offset_map.pxd"
include "uring.pxd"
include "wire.pxd"
include "metrics.pxd"
