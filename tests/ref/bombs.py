"""Decompression bombs: small compressed inputs of each codec that expand to `size` zero bytes.

Built by streaming 1 MiB at a time, so building one never holds its expanded size: a test can
build a 1 GiB bomb and still measure the memory that decompressing it takes.  Each is a valid
stream of its codec (the framing Kafka clients write), so only a decompressed-size bound stops it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import cramjam
import lz4.frame
import zstandard

from tests.ref.compress import XERIAL_MAGIC

_CHUNK = bytes(1 << 20)
_SNAPPY_BLOCK = 1 << 16


def _stream(size: int, compress: Callable[[bytes], bytes]) -> list[bytes]:
    return [compress(_CHUNK[: min(len(_CHUNK), size - done)]) for done in range(0, size, len(_CHUNK))]


def gzip_bomb(size: int) -> bytes:
    """One gzip member (size a multiple of 1 MiB).  Deflating 1 GiB takes seconds, so one MiB is
    deflated once, ended with a full flush (byte-aligned, no history: the next MiB would compress
    to the same bytes), and repeated; an empty final block and the trailer close the member."""
    chunks = size // len(_CHUNK)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(_CHUNK) + z.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(chunks):
        crc = zlib.crc32(_CHUNK, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * chunks + zlib.compressobj(9, zlib.DEFLATED, -15).flush() + struct.pack(
        "<II", crc, size & 0xFFFFFFFF)


def lz4_bomb(size: int) -> bytes:
    # 4 MiB blocks: the largest lz4 allows, so the best ratio (still only ~250:1).
    c = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB)
    return c.begin() + b"".join(_stream(size, c.compress)) + c.flush()


def zstd_bomb(size: int, window_log: int = 0) -> bytes:
    """One frame without a content size (as zstd-jni's output stream writes it); window_log 27
    makes the decoder allocate its largest default window as well."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return b"".join(_stream(size, c.compress)) + c.flush()


def zstd_lying_bomb(size: int) -> bytes:
    """A frame whose header claims 1 KiB of content (ZSTD_getFrameContentSize is untrusted)."""
    frame = zstd_bomb(size)
    small = zstandard.ZstdCompressor(level=3).compress(bytes(1024))
    # Splice the small frame's header (which carries a content size) onto the big frame's blocks.
    big_header = zstandard.frame_header_size(frame)
    return small[: zstandard.frame_header_size(small)] + frame[big_header:]


def snappy_xerial_bomb(size: int) -> bytes:
    """The Java client's xerial framing: one 64 KiB block of zeros (~3 KiB compressed) repeated;
    snappy's ratio is small, so this is the best snappy can do."""
    block = bytes(cramjam.snappy.compress_raw(bytes(_SNAPPY_BLOCK)))
    return XERIAL_MAGIC + struct.pack(">ii", 1, 1) + (struct.pack(">I", len(block)) + block) * (size // _SNAPPY_BLOCK)


def snappy_lying_bomb(size: int) -> bytes:
    """A raw snappy block whose header claims `size` bytes (the real data is 64 KiB): refused
    from the header, before anything is allocated."""
    block = bytes(cramjam.snappy.compress_raw(bytes(_SNAPPY_BLOCK)))
    varint = bytearray()
    n = size
    while n >= 0x80:
        varint.append(n & 0x7F | 0x80)
        n >>= 7
    varint.append(n)
    return bytes(varint) + block[3:]  # 65536 is a 3-byte varint


# name -> (codec id, builder)
BOMBS: dict[str, tuple[int, Callable[[int], bytes]]] = {
    "gzip": (1, gzip_bomb),
    "snappy-xerial": (2, snappy_xerial_bomb),
    "snappy-raw-lying-length": (2, snappy_lying_bomb),
    "lz4": (3, lz4_bomb),
    "zstd": (4, zstd_bomb),
    "zstd-window-2^27": (4, lambda size: zstd_bomb(size, 27)),
    "zstd-lying-content-size": (4, zstd_lying_bomb),
}
