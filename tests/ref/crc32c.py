"""Reference CRC-32C (Castagnoli), bit-by-bit table version of pyk._native.crc32c.

Same value convention as zlib.crc32: 0 starts, a previous result continues.
"""

from __future__ import annotations

from tests.ref._ints import byte_view, uint32

_POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()

# The reference never uses the hardware instruction.
CRC32C_HW = False


def crc32c(data: object, value: int = 0) -> int:
    value = uint32(value)
    table = _TABLE
    crc = value ^ 0xFFFFFFFF
    for byte in byte_view(data).tobytes():
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_portable(data: object, value: int = 0) -> int:
    return crc32c(data, value)
