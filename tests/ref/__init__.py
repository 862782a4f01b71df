"""Pure-Python twins of pyk._native, name for name, so that `tests.ref` and `pyk._native`
are interchangeable modules in the native-vs-reference tests (STYLE practice 6).

They favour plainness over speed: slow, obviously right, and independent of the C code.
The batch builder (builder.py) and hypothesis strategies (strategies.py) live alongside
but are not part of the twin set.
"""

from tests.ref.batch import (
    BATCH_INFO_FIELDS,
    BatchInfo,
    ScanResult,
    assign_offsets,
    batch_info,
    find_batch,
    scan_batches,
    segment_find_batch,
    validate_batch,
)
from tests.ref.compress import compress, decompress, recompress_batch
from tests.ref.crc32c import CRC32C_HW, crc32c, crc32c_portable
from tests.ref.index import index_lookup, timeindex_lookup
from tests.ref.metrics import InflightResponses, RequestStats
from tests.ref.offset_map import OffsetMap, count_null_keys
from tests.ref.uring import Ring, cached_pages, uring_probe
from tests.ref.varint import decode_varint, encode_varint, varint_size
from tests.ref.wire import (
    ProduceRequestScan,
    encode_fetch_response,
    encode_produce_response,
    frame_buffer,
    scan_fetch_request,
    scan_produce_request,
    scan_request_header,
)

__all__ = [
    "BATCH_INFO_FIELDS",
    "CRC32C_HW",
    "BatchInfo",
    "InflightResponses",
    "OffsetMap",
    "ProduceRequestScan",
    "RequestStats",
    "Ring",
    "ScanResult",
    "assign_offsets",
    "batch_info",
    "cached_pages",
    "compress",
    "count_null_keys",
    "crc32c",
    "crc32c_portable",
    "decode_varint",
    "decompress",
    "encode_fetch_response",
    "encode_produce_response",
    "encode_varint",
    "find_batch",
    "frame_buffer",
    "index_lookup",
    "recompress_batch",
    "scan_batches",
    "scan_fetch_request",
    "scan_produce_request",
    "scan_request_header",
    "segment_find_batch",
    "timeindex_lookup",
    "uring_probe",
    "validate_batch",
    "varint_size",
]
