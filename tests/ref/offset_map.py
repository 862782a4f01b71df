"""Reference log-cleaner offset map and record filter (see ext/offset_map.pyx for the format
and the rules): the same slot count, load limit and xxhash64 hashes as the native map, with a
dict standing in for the open-addressing table."""

from __future__ import annotations

import struct

import xxhash

from tests.ref.batch import batch_info
from tests.ref.compress import compress, decompress
from tests.ref.crc32c import crc32c
from tests.ref.varint import encode_varint, read_varint, read_varlong

_SLOT_SIZE = 16
_HEADER_SIZE = 61
_DELETE_HORIZON = 0x40  # attributes bit 6 (KIP-534)


def _prime_at_most(n: int) -> int:
    for candidate in range(n, 2, -1):
        if candidate % 2 and all(candidate % d for d in range(3, int(candidate ** 0.5) + 1, 2)):
            return candidate
    return 2


def _hash(key: bytes) -> int:
    return xxhash.xxh64_intdigest(key) or 1


def _records(batch: object) -> tuple[memoryview, object, bytes]:
    """(whole batch, its header info, its uncompressed records section); ValueError if bad."""
    data = memoryview(batch).cast("B")  # type: ignore[arg-type]
    info = batch_info(data)
    if info.size < _HEADER_SIZE or info.size > len(data):
        raise ValueError(f"record batch of {info.size} bytes declared, {len(data)} present")
    if info.magic != 2:
        raise ValueError(f"record batch magic {info.magic}, expected 2")
    if info.records_count < 0:
        raise ValueError("negative record count")
    section = bytes(data[_HEADER_SIZE:info.size])
    if info.compression:
        section = decompress(info.compression, section)
    return data, info, section


def _walk(section: bytes, count: int):
    """(start, end, offset delta, key or None, is tombstone, timestamp delta, position after the
    timestamp delta) per record; ValueError if malformed."""
    pos = 0
    for _ in range(count):
        start = pos
        length, pos = read_varint(section, pos)
        if length < 0 or pos + length > len(section):
            raise ValueError("record runs past its section")
        end = pos + length
        rec = section[:end]
        pos += 1
        if pos > end:
            raise ValueError("record too short")
        ts_delta, pos = read_varlong(rec, pos)
        after_ts = pos
        delta, pos = read_varint(rec, pos)
        key_len, pos = read_varint(rec, pos)
        if key_len < -1 or pos + max(key_len, 0) > end:
            raise ValueError("bad key")
        key = None if key_len == -1 else rec[pos:pos + key_len]
        pos += max(key_len, 0)
        value_len, pos = read_varint(rec, pos)
        if value_len < -1 or pos + max(value_len, 0) > end:
            raise ValueError("bad value")
        pos += max(value_len, 0)
        headers, pos = read_varint(rec, pos)
        if headers < 0:
            raise ValueError("bad header count")
        for _ in range(headers):
            hk, pos = read_varint(rec, pos)
            if hk < 0 or pos + hk > end:
                raise ValueError("bad header key")
            pos += hk
            hv, pos = read_varint(rec, pos)
            if hv < -1 or pos + max(hv, 0) > end:
                raise ValueError("bad header value")
            pos += max(hv, 0)
        if pos != end:
            raise ValueError("record length mismatch")
        yield start, end, delta, key, value_len == -1, ts_delta, after_ts
    if pos != len(section):
        raise ValueError("bytes after the last record")


class OffsetMap:
    """Twin of pyk._native.OffsetMap."""

    def __init__(self, memory: int, load_factor: float = 0.9) -> None:
        slots = memory // _SLOT_SIZE
        if slots < 2:
            raise ValueError(f"offset map needs at least {2 * _SLOT_SIZE} bytes, got {memory}")
        if not 0.0 < load_factor <= 1.0:
            raise ValueError(f"load factor must be in (0, 1], got {load_factor}")
        self.slots = _prime_at_most(slots)
        self.max_entries = int(float(self.slots) * load_factor)
        if self.max_entries < 1:
            raise ValueError("no key fits")
        self.clear()

    def clear(self) -> None:
        self._map: dict[int, int] = {}
        self.latest_offset = -1

    @property
    def size(self) -> int:
        return len(self._map)

    @property
    def is_full(self) -> bool:
        return self.size >= self.max_entries

    def _put_hash(self, h: int, offset: int) -> bool:
        if h not in self._map and self.size >= self.max_entries:
            return False
        self._map[h] = offset
        self.latest_offset = offset
        return True

    def put(self, key: object, offset: int) -> None:
        if not self._put_hash(_hash(bytes(key)), offset):  # type: ignore[call-overload]
            raise ValueError("offset map full")

    def get(self, key: object) -> int:
        return self._map.get(_hash(bytes(key)), -1)  # type: ignore[call-overload]

    def put_batch(self, batch: object, start_offset: int) -> tuple[int, bool]:
        _, info, section = _records(batch)
        put = 0
        if not info.is_control:
            for _, _, delta, key, *_ in _walk(section, info.records_count):
                offset = info.base_offset + delta
                if key is None or offset < start_offset:
                    continue
                if not self._put_hash(_hash(key), offset):
                    return put, False
                put += 1
        if info.last_offset >= start_offset:
            self.latest_offset = info.last_offset
        return put, True

    def filter_batch(self, batch: object, now_ms: int, delete_horizon_ms: int) -> tuple[int, int, bytes | None]:
        data, info, section = _records(batch)
        if info.is_control:
            return info.records_count, 0, None
        has_horizon = bool(info.attributes & _DELETE_HORIZON)
        retain_deletes = not has_horizon or now_ms < info.first_timestamp
        kept: list[tuple] = []
        removed = 0
        for rec in _walk(section, info.records_count):
            _, _, delta, key, tombstone, _, _ = rec
            offset = info.base_offset + delta
            if offset > self.latest_offset:
                keep = True
            elif key is None:
                keep = False
            else:
                keep = offset >= self._map.get(_hash(key), -1) and (retain_deletes or not tombstone)
            if keep:
                kept.append(rec)
            else:
                removed += 1
        stamp = not has_horizon and any(r[4] for r in kept)
        if not kept or (not removed and not stamp):
            return len(kept), removed, None
        new_base = delete_horizon_ms if stamp else info.first_timestamp
        parts = []
        for start, end, _, _, _, ts_delta, after_ts in kept:
            if new_base == info.first_timestamp:
                parts.append(section[start:end])
            else:
                body = b"\x00" + encode_varint(ts_delta + info.first_timestamp - new_base) + section[after_ts:end]
                parts.append(encode_varint(len(body)) + body)
        body = b"".join(parts)
        if info.compression:
            body = compress(info.compression, body)
        out = bytearray(data[:_HEADER_SIZE]) + body
        struct.pack_into(">i", out, 8, len(out) - 12)
        struct.pack_into(">i", out, 57, len(kept))
        if stamp:
            struct.pack_into(">h", out, 21, info.attributes | _DELETE_HORIZON)
            struct.pack_into(">q", out, 27, new_base)
        struct.pack_into(">I", out, 17, crc32c(out[21:]))
        return len(kept), removed, bytes(out)


def count_null_keys(batch: object) -> int:
    _, info, section = _records(batch)
    if info.is_control:
        return 0
    return sum(1 for _, _, _, key, *_ in _walk(section, info.records_count) if key is None)
