"""Record batches for the load generator, built once and re-stamped per send; record counting on receipt.

Owns the bytes the bench puts on the wire and reads back:

* `payloads(size, n)`: deterministic JSON-like log lines (the same kind of text as
  ../shared/bench/kload, so codecs see comparable ratios).
* `BatchTemplate`: the records section of up to `max_records` records, encoded once.  A batch of
  n <= max_records records is that section's first n records (record i always carries offset
  delta i, so a prefix is itself a valid records section) behind a fresh header.
* The latency stamp: the first record's value starts with two CLOCK_MONOTONIC nanosecond
  times, when the batch's first and last records were due.  A consumer on the same host reads
  them back from the first record of each batch it receives (`read_stamp`).
* `count_records(blob)`: records and next offset of a Fetch response's record set, from the
  batch headers alone (no per-record Python work).

Record batch v2 (KIP-98): the header of pyk.log.record_batch, then the records, compressed as one
block when the codec is not 0:

    Record => length:varint attributes:int8 timestampDelta:varlong offsetDelta:varint
              keyLength:varint key valueLength:varint value headers:[Header]
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from collections.abc import Callable

from pyk._native import decode_varint, encode_varint
from pyk.log.record_batch import (
    ATTR_COMPRESSION_MASK,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    READ_ATTRIBUTES,
    READ_LAST_OFFSET_DELTA,
    READ_LENGTH,
    READ_OFFSET_LENGTH,
    READ_RECORDS_COUNT,
    BatchHeader,
    write_header,
)

_STAMP = struct.Struct(">qq")
STAMP_SIZE = _STAMP.size

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# Payloads ----------------------------------------------------------------------------------------

_SVC = ("checkout", "payments", "search", "auth", "catalog", "cart")
_LVL = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
_MSG = ("GET /api/v1/orders", "POST /api/v1/cart/items", "GET /api/v2/search?q=",
        "upstream timeout after", "cache miss for key user:", "token refreshed for account")


def payloads(size: int, n: int, seed: int = 1) -> list[bytes]:
    """n deterministic payloads of exactly `size` bytes: log lines in JSON, one line each."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        buf = bytearray()
        while len(buf) < size:
            buf += (
                f'{{"ts":{1732500000000 + rnd.randrange(86400000)},"lvl":"{rnd.choice(_LVL)}",'
                f'"svc":"{rnd.choice(_SVC)}-{rnd.randrange(8)}","host":"node-{rnd.randrange(32):02d}",'
                f'"msg":"{rnd.choice(_MSG)}{rnd.randrange(100000)}","status":{200 if rnd.randrange(10) else 500},'
                f'"dur_ms":{rnd.randrange(250)},"trace":"{rnd.getrandbits(64):016x}"}} '
            ).encode()
        out.append(bytes(buf[:size]))
    return out


# Codecs (the producer side's own libraries, as a client would use) -----------------------------

def _lz4(data: bytes) -> bytes:
    import lz4.frame

    # Kafka's LZ4 framing: 64 KiB independent blocks, no content size or checksum (what the
    # Java producer's KafkaLZ4BlockOutputStream and librdkafka write).
    return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
                              content_checksum=False, store_size=False)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _snappy(data: bytes) -> bytes:
    import cramjam

    return bytes(cramjam.snappy.compress_raw(data))  # librdkafka writes raw snappy blocks


def _gzip(data: bytes) -> bytes:
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    return gz.compress(data) + gz.flush()


def _unlz4(data: bytes) -> bytes:
    import lz4.frame

    return lz4.frame.decompress(data)


def _unzstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def _unsnappy(data: bytes) -> bytes:
    import cramjam

    if data[:8] == b"\x82SNAPPY\x00":  # xerial framing (Java producer): first block is enough here
        (length,) = struct.unpack_from(">I", data, 16)
        data = data[20 : 20 + length]
    return bytes(cramjam.snappy.decompress_raw(data))


COMPRESS: dict[int, Callable[[bytes], bytes]] = {1: _gzip, 2: _snappy, 3: _lz4, 4: _zstd}
DECOMPRESS: dict[int, Callable[[bytes], bytes]] = {
    1: lambda d: zlib.decompress(d, 47), 2: _unsnappy, 3: _unlz4, 4: _unzstd}


# Building batches --------------------------------------------------------------------------------

class BatchTemplate:
    """Pre-encoded records for batches of up to `max_records` records of `size`-byte values.

    Values cycle through `pool` distinct payloads (4096, as kload's pool for small messages), so
    a codec sees about as much repetition inside a batch as it does with kload.
    Immutable after construction, so slices of `records` may be handed to a transport that keeps
    them until written.  `build(n, first_due, last_due)` returns the batch as parts to write in
    order and its total size; only the header and the first record's stamp are new bytes.
    Compressed templates cache the compressed section per record count when unstamped (the
    maximum-throughput case, where n is always max_records) and compress each stamped batch anew.
    """

    def __init__(self, size: int, max_records: int, codec: int = 0, stamped: bool = True, pool: int = 4096) -> None:
        if max_records < 1:
            raise ValueError("a batch holds at least one record")
        self.size = size
        self.max_records = max_records
        self.codec = codec
        self.stamped = stamped and size >= STAMP_SIZE
        values = payloads(size, min(pool, max_records))
        section = bytearray()
        self.ends: list[int] = []  # ends[i]: end of record i in `records`
        for i in range(max_records):
            body = b"\x00\x00" + encode_varint(i) + b"\x01" + encode_varint(size) + values[i % len(values)] + b"\x00"
            # attributes=0, timestampDelta=0, offsetDelta=i, key=null (-1 -> 0x01), value, 0 headers
            section += encode_varint(len(body)) + body
            self.ends.append(len(section))
        self.records = bytes(section)
        self._view = memoryview(self.records)
        # Where the first record's value starts: after its length varint and the four
        # one-byte fields / the value length varint.
        _, first_len_size = decode_varint(self.records, 0)
        self.value_at = first_len_size + 4 + len(encode_varint(size))
        self._compressed: dict[int, bytes] = {}

    def batch_bytes(self, n: int) -> int:
        """Uncompressed size of a batch of n records (header included)."""
        return BATCH_HEADER_SIZE + self.ends[n - 1]

    def build(self, n: int, first_due: int, last_due: int, now_ms: int | None = None) -> tuple[list[object], int]:
        """(parts, total size) of a batch of the first n records, stamped with the due times."""
        if now_ms is None:
            now_ms = time.time_ns() // 1_000_000
        end = self.ends[n - 1]
        if self.codec == 0:
            if self.stamped:
                head = bytearray(BATCH_HEADER_SIZE + self.value_at + STAMP_SIZE)
                head[BATCH_HEADER_SIZE:BATCH_HEADER_SIZE + self.value_at] = self._view[: self.value_at]
                _STAMP.pack_into(head, BATCH_HEADER_SIZE + self.value_at, first_due, last_due)
                rest = self._view[self.value_at + STAMP_SIZE : end]
            else:
                head = bytearray(BATCH_HEADER_SIZE)
                rest = self._view[:end]
            write_header(head, BatchHeader(0, n - 1, now_ms, now_ms, n), rest)
            return [head, rest], len(head) + len(rest)
        section = self._compressed.get(n) if not self.stamped else None
        if section is None:
            raw = self.records[:end]
            if self.stamped:
                raw = (raw[: self.value_at] + _STAMP.pack(first_due, last_due)
                       + raw[self.value_at + STAMP_SIZE :])
            section = COMPRESS[self.codec](raw)
            if not self.stamped:
                if len(self._compressed) > 16:
                    self._compressed.clear()
                self._compressed[n] = section
        head = bytearray(BATCH_HEADER_SIZE)
        write_header(head, BatchHeader(self.codec, n - 1, now_ms, now_ms, n), section)
        return [head, section], BATCH_HEADER_SIZE + len(section)


# Reading record sets -----------------------------------------------------------------------------

def count_records(blob: memoryview, start_offset: int) -> tuple[int, int, int, list[int]]:
    """(records, payload bytes, next offset, positions of complete batches) of a record set.

    Only batch headers are read; an incomplete batch at the end (a Fetch response may cut
    one) is ignored.  Batches wholly below `start_offset` (a fetch from the middle of a
    compressed batch returns the whole batch) are skipped.  Payload bytes are the batches'
    record sections, the closest measure of message bytes that needs no per-record parse."""
    pos, end = 0, len(blob)
    count = size = 0
    next_offset = start_offset
    positions = []
    while end - pos >= BATCH_HEADER_SIZE:
        base, length = READ_OFFSET_LENGTH.unpack_from(blob, pos)
        stop = pos + LOG_OVERHEAD + length
        if length < MIN_BATCH_LENGTH or stop > end:
            break
        last = base + READ_LAST_OFFSET_DELTA.unpack_from(blob, pos)[0]
        if last >= start_offset:
            count += READ_RECORDS_COUNT.unpack_from(blob, pos)[0]
            size += length - MIN_BATCH_LENGTH
            positions.append(pos)
            next_offset = last + 1
        pos = stop
    return count, size, next_offset, positions


def read_stamp(blob: memoryview, pos: int) -> tuple[int, int, int] | None:
    """(first_due_ns, last_due_ns, records) stamped into the batch at `pos`, or None when the batch
    carries no bench stamp (another producer's, or values shorter than the stamp)."""
    attributes = READ_ATTRIBUTES.unpack_from(blob, pos)[0]
    n = READ_RECORDS_COUNT.unpack_from(blob, pos)[0]
    length = READ_LENGTH.unpack_from(blob, pos)[0]
    section: bytes | memoryview = blob[pos + BATCH_HEADER_SIZE : pos + LOG_OVERHEAD + length]
    codec = attributes & ATTR_COMPRESSION_MASK
    if codec:
        try:
            section = DECOMPRESS[codec](bytes(section))
        except Exception:
            return None
    try:
        _, p = decode_varint(section, 0)
        p += 1  # attributes
        _, p = decode_varint(section, p)  # timestamp delta
        _, p = decode_varint(section, p)  # offset delta
        klen, p = decode_varint(section, p)
        p += max(klen, 0)
        vlen, p = decode_varint(section, p)
    except (ValueError, IndexError):
        return None
    if vlen < STAMP_SIZE or p + STAMP_SIZE > len(section):
        return None
    first, last = _STAMP.unpack_from(section, p)
    now = time.monotonic_ns()
    # Reject values that are not ours: a stamp lies in the recent past of this host's clock.
    if not (0 < first <= last <= now and now - first < 3_600_000_000_000):
        return None
    return first, last, n
