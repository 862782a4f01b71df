"""Reference zigzag varints with Kafka's ByteUtils semantics (readVarint: at most 5 bytes,
32-bit wrap; readVarlong: at most 10 bytes, 64-bit wrap)."""

from __future__ import annotations

from tests.ref._ints import be_signed, byte_view, int64, ssize


def _read_raw(data: bytes | memoryview, pos: int, max_bytes: int, bits: int) -> tuple[int, int]:
    """Unsigned varint at pos -> (zigzag-decoded value, next pos); ValueError when
    truncated or longer than max_bytes."""
    raw = 0
    for i in range(max_bytes):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            raw &= (1 << bits) - 1
            return be_signed((raw >> 1) ^ -(raw & 1) & ((1 << bits) - 1), bits), pos
    raise ValueError("varint too long")


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Kafka varint (int32 zigzag) at pos -> (value, next pos)."""
    return _read_raw(data, pos, 5, 32)


def read_varlong(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Kafka varlong (int64 zigzag) at pos -> (value, next pos)."""
    return _read_raw(data, pos, 10, 64)


def encode_varint(value: int) -> bytes:
    value = int64(value)
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def decode_varint(buf: object, offset: int = 0) -> tuple[int, int]:
    offset = ssize(offset)
    data = byte_view(buf)
    if offset < 0 or offset > len(data):
        raise ValueError(f"offset {offset} outside a buffer of {len(data)} bytes")
    try:
        return read_varlong(data, offset)
    except ValueError:
        raise ValueError(f"truncated or over-long varint at offset {offset}") from None


def varint_size(value: int) -> int:
    return len(encode_varint(value))
