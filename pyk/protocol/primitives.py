"""Pure-Python codecs for the Kafka protocol's primitive types.

Owns the wire encodings of https://kafka.apache.org/protocol#protocol_types:

    INT8 INT16 INT32 INT64 UINT16 UINT32 FLOAT64 BOOLEAN   big-endian, fixed width
    UNSIGNED_VARINT                                         LEB128, at most 5 bytes (32 bits)
    VARINT / VARLONG                                        zigzag + LEB128, 5 / 10 bytes
    STRING / NULLABLE_STRING      INT16 length (-1 = null) + UTF-8 bytes
    COMPACT_(NULLABLE_)STRING     UNSIGNED_VARINT length+1 (0 = null) + UTF-8 bytes
    BYTES / COMPACT_BYTES         the same with INT32 / UNSIGNED_VARINT lengths
    ARRAY / COMPACT_ARRAY         INT32 count (-1 = null) / UNSIGNED_VARINT count+1 (0 = null)
    UUID                          16 bytes
    TAGGED_FIELDS                 UNSIGNED_VARINT count, then per field: tag, size, data (KIP-482)

Readers take a buffer (normally a memoryview of the request frame) and an offset and return
`(value, new_offset)`; a read past the end raises ProtocolViolation naming what was expected and
how many bytes remained (the pgproto `frb` convention).  Writers append to a bytearray.

The generated codecs in `compile.py` inline the fixed-width cases with precompiled
`struct.Struct`s and call the varint helpers here; the record-batch layer uses the zigzag
varints.  Hot native twins live in `ext/varint.pyx`.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pyk.errors import ProtocolViolation

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview

INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
UINT32 = struct.Struct(">I")
FLOAT64 = struct.Struct(">d")
BOOL = struct.Struct(">?")

UVARINT_MAX = 0xFFFFFFFF
# One-byte encodings precomputed: almost every compact length and tag count is below 128.
_SMALL_UVARINT = [bytes((i,)) for i in range(128)]


def short_read(what: str, need: int, buf: Buffer, pos: int) -> ProtocolViolation:
    """The error for a read of `need` bytes of `what` at `pos` that runs past the end."""
    remain = max(len(buf) - pos, 0)
    return ProtocolViolation(f"expected {need} bytes ({what}) at offset {pos}, {remain} remain")


# --------------------------------------------------------------------------------------------
# Fixed width


def _fixed_reader(s: struct.Struct, what: str) -> Callable[[Buffer, int], tuple[Any, int]]:
    size = s.size
    unpack_from = s.unpack_from

    def read(buf: Buffer, pos: int) -> tuple[Any, int]:
        if pos + size > len(buf):
            raise short_read(what, size, buf, pos)
        return unpack_from(buf, pos)[0], pos + size

    read.__name__ = f"read_{what}"
    return read


def _fixed_writer(s: struct.Struct, what: str) -> Callable[[bytearray, Any], None]:
    pack = s.pack

    def write(out: bytearray, value: Any) -> None:
        out += pack(value)

    write.__name__ = f"write_{what}"
    return write


IntReader = Callable[[Buffer, int], tuple[int, int]]
read_int8: IntReader = _fixed_reader(INT8, "int8")
read_int16: IntReader = _fixed_reader(INT16, "int16")
read_int32: IntReader = _fixed_reader(INT32, "int32")
read_int64: IntReader = _fixed_reader(INT64, "int64")
read_uint16: IntReader = _fixed_reader(UINT16, "uint16")
read_uint32: IntReader = _fixed_reader(UINT32, "uint32")
read_float64: Callable[[Buffer, int], tuple[float, int]] = _fixed_reader(FLOAT64, "float64")
read_bool: Callable[[Buffer, int], tuple[bool, int]] = _fixed_reader(BOOL, "bool")
write_int8 = _fixed_writer(INT8, "int8")
write_int16 = _fixed_writer(INT16, "int16")
write_int32 = _fixed_writer(INT32, "int32")
write_int64 = _fixed_writer(INT64, "int64")
write_uint16 = _fixed_writer(UINT16, "uint16")
write_uint32 = _fixed_writer(UINT32, "uint32")
write_float64 = _fixed_writer(FLOAT64, "float64")
write_bool = _fixed_writer(BOOL, "bool")


def read_uuid(buf: Buffer, pos: int) -> tuple[uuid.UUID, int]:
    if pos + 16 > len(buf):
        raise short_read("uuid", 16, buf, pos)
    return uuid.UUID(bytes=bytes(buf[pos : pos + 16])), pos + 16


def write_uuid(out: bytearray, value: uuid.UUID) -> None:
    out += value.bytes


# --------------------------------------------------------------------------------------------
# Varints


def read_uvarint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Unsigned LEB128 of at most 32 bits (Kafka's UNSIGNED_VARINT)."""
    result = 0
    shift = 0
    n = len(buf)
    start = pos
    while True:
        if pos >= n:
            raise short_read("unsigned varint", pos - start + 1, buf, start)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 28:
            raise ProtocolViolation(f"unsigned varint at offset {start} is longer than 5 bytes")
    if result > UVARINT_MAX:
        raise ProtocolViolation(f"unsigned varint at offset {start} exceeds 32 bits: {result}")
    return result, pos


def encode_uvarint(value: int) -> bytes:
    if value < 128:
        if value < 0:
            raise ValueError(f"unsigned varint must be >= 0, got {value}")
        return _SMALL_UVARINT[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_uvarint(out: bytearray, value: int) -> None:
    out += encode_uvarint(value)


def uvarint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _read_uvarlong(buf: Buffer, pos: int, max_bytes: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    n = len(buf)
    start = pos
    for _ in range(max_bytes):
        if pos >= n:
            raise short_read(what, pos - start + 1, buf, start)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise ProtocolViolation(f"{what} at offset {start} is longer than {max_bytes} bytes")


def read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """Zigzag-encoded signed 32-bit varint (record fields such as key length)."""
    raw, pos = _read_uvarlong(buf, pos, 5, "varint")
    if raw > UVARINT_MAX:
        raise ProtocolViolation(f"varint exceeds 32 bits: {raw}")
    return (raw >> 1) ^ -(raw & 1), pos


def read_varlong(buf: Buffer, pos: int) -> tuple[int, int]:
    """Zigzag-encoded signed 64-bit varint (record timestamp and offset deltas)."""
    raw, pos = _read_uvarlong(buf, pos, 10, "varlong")
    if raw > 0xFFFFFFFFFFFFFFFF:
        raise ProtocolViolation(f"varlong exceeds 64 bits: {raw}")
    return (raw >> 1) ^ -(raw & 1), pos


def encode_varint(value: int) -> bytes:
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError(f"varint out of 32-bit range: {value}")
    return encode_uvarint(((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def encode_varlong(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"varlong out of 64-bit range: {value}")
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def write_varint(out: bytearray, value: int) -> None:
    out += encode_varint(value)


def write_varlong(out: bytearray, value: int) -> None:
    out += encode_varlong(value)


def varint_size(value: int) -> int:
    return uvarint_size(((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------------------------
# Strings and bytes


def _take(buf: Buffer, pos: int, length: int, what: str) -> memoryview:
    end = pos + length
    if end > len(buf):
        raise short_read(what, length, buf, pos)
    return memoryview(buf)[pos:end]


def _decode_utf8(raw: memoryview, pos: int) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolViolation(f"string at offset {pos} is not UTF-8: {exc.reason}") from None


def read_nullable_string(buf: Buffer, pos: int) -> tuple[str | None, int]:
    length, pos = read_int16(buf, pos)
    if length < 0:
        if length != -1:
            raise ProtocolViolation(f"string length {length} at offset {pos - 2}")
        return None, pos
    return _decode_utf8(_take(buf, pos, length, "string data"), pos), pos + length


def read_string(buf: Buffer, pos: int) -> tuple[str, int]:
    value, new = read_nullable_string(buf, pos)
    if value is None:
        raise ProtocolViolation(f"null for a non-nullable string at offset {pos}")
    return value, new


def read_compact_nullable_string(buf: Buffer, pos: int) -> tuple[str | None, int]:
    length, pos = read_uvarint(buf, pos)
    if length == 0:
        return None, pos
    length -= 1
    return _decode_utf8(_take(buf, pos, length, "compact string data"), pos), pos + length


def read_compact_string(buf: Buffer, pos: int) -> tuple[str, int]:
    value, new = read_compact_nullable_string(buf, pos)
    if value is None:
        raise ProtocolViolation(f"null for a non-nullable compact string at offset {pos}")
    return value, new


def write_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += b"\xff\xff"
        return
    raw = value.encode()
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes does not fit an INT16 length")
    out += INT16.pack(len(raw))
    out += raw


write_string = write_nullable_string


def write_compact_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += b"\x00"
        return
    raw = value.encode()
    out += encode_uvarint(len(raw) + 1)
    out += raw


write_compact_string = write_compact_nullable_string


def read_nullable_bytes(buf: Buffer, pos: int) -> tuple[memoryview | None, int]:
    """INT32-length bytes as a zero-copy view into `buf` (None for length -1)."""
    length, pos = read_int32(buf, pos)
    if length < 0:
        if length != -1:
            raise ProtocolViolation(f"bytes length {length} at offset {pos - 4}")
        return None, pos
    return _take(buf, pos, length, "bytes data"), pos + length


def read_bytes(buf: Buffer, pos: int) -> tuple[memoryview, int]:
    value, new = read_nullable_bytes(buf, pos)
    if value is None:
        raise ProtocolViolation(f"null for non-nullable bytes at offset {pos}")
    return value, new


def read_compact_nullable_bytes(buf: Buffer, pos: int) -> tuple[memoryview | None, int]:
    length, pos = read_uvarint(buf, pos)
    if length == 0:
        return None, pos
    length -= 1
    return _take(buf, pos, length, "compact bytes data"), pos + length


def read_compact_bytes(buf: Buffer, pos: int) -> tuple[memoryview, int]:
    value, new = read_compact_nullable_bytes(buf, pos)
    if value is None:
        raise ProtocolViolation(f"null for non-nullable compact bytes at offset {pos}")
    return value, new


def write_nullable_bytes(out: bytearray, value: Buffer | None) -> None:
    if value is None:
        out += b"\xff\xff\xff\xff"
        return
    out += INT32.pack(len(value))
    out += value


write_bytes = write_nullable_bytes


def write_compact_nullable_bytes(out: bytearray, value: Buffer | None) -> None:
    if value is None:
        out += b"\x00"
        return
    out += encode_uvarint(len(value) + 1)
    out += value


write_compact_bytes = write_compact_nullable_bytes


# --------------------------------------------------------------------------------------------
# Arrays


def _check_count(count: int, buf: Buffer, pos: int) -> None:
    # Every element takes at least one byte, so a count above the remaining bytes is a lie;
    # refusing it early keeps a 2^31 count from building a huge list before failing.
    if count > len(buf) - pos:
        raise ProtocolViolation(f"array of {count} elements at offset {pos}, only {len(buf) - pos} bytes remain")


def read_nullable_array(
    buf: Buffer, pos: int, read_elem: Callable[[Buffer, int], tuple[T, int]]
) -> tuple[list[T] | None, int]:
    count, pos = read_int32(buf, pos)
    if count < 0:
        return None, pos
    _check_count(count, buf, pos)
    items = []
    for _ in range(count):
        item, pos = read_elem(buf, pos)
        items.append(item)
    return items, pos


def read_array(buf: Buffer, pos: int, read_elem: Callable[[Buffer, int], tuple[T, int]]) -> tuple[list[T], int]:
    items, new = read_nullable_array(buf, pos, read_elem)
    if items is None:
        raise ProtocolViolation(f"null for a non-nullable array at offset {pos}")
    return items, new


def read_compact_nullable_array(
    buf: Buffer, pos: int, read_elem: Callable[[Buffer, int], tuple[T, int]]
) -> tuple[list[T] | None, int]:
    count, pos = read_uvarint(buf, pos)
    if count == 0:
        return None, pos
    count -= 1
    _check_count(count, buf, pos)
    items = []
    for _ in range(count):
        item, pos = read_elem(buf, pos)
        items.append(item)
    return items, pos


def read_compact_array(
    buf: Buffer, pos: int, read_elem: Callable[[Buffer, int], tuple[T, int]]
) -> tuple[list[T], int]:
    items, new = read_compact_nullable_array(buf, pos, read_elem)
    if items is None:
        raise ProtocolViolation(f"null for a non-nullable compact array at offset {pos}")
    return items, new


def write_nullable_array(out: bytearray, items: list[T] | None, write_elem: Callable[[bytearray, T], None]) -> None:
    if items is None:
        out += b"\xff\xff\xff\xff"
        return
    out += INT32.pack(len(items))
    for item in items:
        write_elem(out, item)


write_array = write_nullable_array


def write_compact_nullable_array(
    out: bytearray, items: list[T] | None, write_elem: Callable[[bytearray, T], None]
) -> None:
    if items is None:
        out += b"\x00"
        return
    out += encode_uvarint(len(items) + 1)
    for item in items:
        write_elem(out, item)


write_compact_array = write_compact_nullable_array


# --------------------------------------------------------------------------------------------
# Tagged fields (KIP-482)


def read_tagged_fields(buf: Buffer, pos: int) -> tuple[dict[int, memoryview], int]:
    """A tagged-field section as {tag: raw data view}; tags must be strictly increasing."""
    count, pos = read_uvarint(buf, pos)
    _check_count(count, buf, pos)
    fields: dict[int, memoryview] = {}
    prev = -1
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        if tag <= prev:
            raise ProtocolViolation(f"tagged field {tag} at offset {pos} is not above the previous tag {prev}")
        prev = tag
        size, pos = read_uvarint(buf, pos)
        fields[tag] = _take(buf, pos, size, f"tagged field {tag}")
        pos += size
    return fields, pos


def skip_tagged_fields(buf: Buffer, pos: int) -> int:
    return read_tagged_fields(buf, pos)[1]


def write_tagged_fields(out: bytearray, fields: dict[int, Buffer]) -> None:
    out += encode_uvarint(len(fields))
    for tag in sorted(fields):
        data = fields[tag]
        out += encode_uvarint(tag)
        out += encode_uvarint(len(data))
        out += data
