"""Reference codecs over Python packages (zlib, cramjam's snappy, lz4.frame, zstandard),
independent of pyk._native's C code: compress, decompress, recompress_batch.

Compressed bytes may differ from the native ones (other library builds, other defaults);
what must agree is that each side decodes the other's output, and how bad input fails.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from tests.ref._ints import byte_view, c_int, ssize
from tests.ref.crc32c import crc32c

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER_SIZE = 16


def _codec(codec: object) -> int:
    codec = c_int(codec, 32)
    if not 0 <= codec <= 4:
        raise ValueError(f"unknown compression codec {codec} (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")
    return codec


def _compress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        return gz.compress(data) + gz.flush()
    if codec == 2:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == 3:
        return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
                                  content_checksum=False, store_size=False)
    if codec == 4:
        return zstandard.ZstdCompressor(level=3).compress(data)
    return bytes(data)


def _frames(data: bytes, new_decoder) -> bytes:
    """Decode one or more concatenated frames; ValueError when the input ends inside one."""
    out = []
    while True:
        decoder = new_decoder()
        out.append(decoder.decompress(data))
        if not decoder.eof:
            raise ValueError("input ends inside a frame")
        data = decoder.unused_data
        if not data:
            return b"".join(out)


def _gunzip(data: bytes) -> bytes:
    out = []
    while True:
        decoder = zlib.decompressobj(31)
        out.append(decoder.decompress(data))
        if not decoder.eof:
            raise ValueError("gzip stream ends early")
        data = decoder.unused_data
        if not data:
            return b"".join(out)
        if not data.startswith(b"\x1f\x8b"):
            raise ValueError("trailing bytes after gzip member")


def _unsnappy(data: bytes) -> bytes:
    if len(data) < XERIAL_HEADER_SIZE or not data.startswith(XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = [], XERIAL_HEADER_SIZE
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("truncated xerial block length")
        (length,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if length > len(data) - pos:
            raise ValueError("truncated xerial block")
        out.append(bytes(cramjam.snappy.decompress_raw(data[pos:pos + length])))
        pos += length
    return b"".join(out)


def _decompress(codec: int, data: bytes) -> bytes:
    try:
        if codec == 1:
            return _gunzip(data)
        if codec == 2:
            return _unsnappy(data)
        if codec == 3:
            return _frames(data, lz4.frame.LZ4FrameDecompressor)
        if codec == 4:
            if not data:
                raise ValueError("empty zstd input")
            return _frames(data, lambda: zstandard.ZstdDecompressor().decompressobj())
    except (zlib.error, cramjam.DecompressionError, RuntimeError, zstandard.ZstdError) as exc:
        raise ValueError(f"codec {codec}: not valid compressed data ({exc})") from None
    return bytes(data)


def compress(codec: int, data: object) -> bytes:
    codec = _codec(codec)
    return _compress(codec, byte_view(data).tobytes())


def decompress(codec: int, data: object, max_size: int = -1) -> bytes:
    codec, max_size = _codec(codec), ssize(max_size)
    out = _decompress(codec, byte_view(data).tobytes())
    if 0 <= max_size < len(out):
        raise ValueError(f"codec {codec}: output larger than {max_size}")
    return out


def recompress_batch(batch: object, codec: int, max_decompressed: int = -1) -> bytes:
    codec, max_decompressed = _codec(codec), ssize(max_decompressed)
    data = byte_view(batch)
    if len(data) < 61:
        raise ValueError(f"record batch header needs 61 bytes, {len(data)} remain")
    (length,) = struct.unpack_from(">i", data, 8)
    size = length + 12
    if size < 61 or size > len(data):
        raise ValueError(f"record batch of {size} bytes declared, {len(data)} present")
    if data[16] != 2:
        raise ValueError(f"record batch magic {data[16]}, expected 2")
    (attributes,) = struct.unpack_from(">h", data, 21)
    records = _decompress(_codec(attributes & 7), data[61:size].tobytes())
    if 0 <= max_decompressed < len(records):
        raise ValueError(f"codec {attributes & 7}: output larger than {max_decompressed}")
    section = _compress(codec, records)
    out = bytearray(data[:61]) + section
    struct.pack_into(">i", out, 8, 49 + len(section))
    struct.pack_into(">h", out, 21, (attributes & ~7) | codec)
    struct.pack_into(">I", out, 17, crc32c(out[21:]))
    return bytes(out)
