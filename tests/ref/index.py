"""Reference index search over Kafka's offset (8-byte) and time (12-byte) index entries."""

from __future__ import annotations

import struct

from tests.ref._ints import byte_view, int64, ssize


def _lookup(buf: object, n_entries: object, target: object, entry_size: int, fmt: str) -> int:
    n_entries, target = ssize(n_entries), int64(target)
    data = byte_view(buf)
    if n_entries < 0 or n_entries > len(data) // entry_size:
        raise ValueError(
            f"{n_entries} entries of {entry_size} bytes do not fit a buffer of {len(data)} bytes")
    # Linear on purpose: the reference states the answer, the native code searches.
    slot = -1
    for i in range(n_entries):
        (key,) = struct.unpack_from(fmt, data, i * entry_size)
        if key <= target:
            slot = i
    return slot


def index_lookup(buf: object, n_entries: int, target_relative_offset: int) -> int:
    return _lookup(buf, n_entries, target_relative_offset, 8, ">i")


def timeindex_lookup(buf: object, n_entries: int, target_ts: int) -> int:
    return _lookup(buf, n_entries, target_ts, 12, ">q")
