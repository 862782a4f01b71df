"""OffsetIndex and TimeIndex: the sparse, memory-mapped lookup files of one segment.

Owns the `.index` and `.timeindex` files (Kafka OffsetIndex.java, TimeIndex.java, AbstractIndex.java).
Both are arrays of fixed-size big-endian entries, written through an mmap:

    OffsetIndex entry (8 bytes)  => relative_offset:int32 position:int32
        relative_offset = (last offset of an indexed batch) - segment base offset
        position        = byte position of that batch in the segment's .log file
    TimeIndex entry (12 bytes)   => timestamp:int64 relative_offset:int32
        timestamp       = largest timestamp in the segment up to and including that offset
        relative_offset = offset of the batch where that timestamp was first reached

Invariants (checked by `sanity_check` at load; a failing index is rebuilt from the .log):
  * OffsetIndex: relative offsets strictly increase, positions strictly increase, the last
    position lies inside the .log file.
  * TimeIndex: timestamps strictly increase, relative offsets never decrease.
  * The file length is a multiple of the entry size.

Lifecycle (as Kafka): the active segment's index files are preallocated to segment.index.bytes
(rounded down to whole entries) so appends never grow the file; when the segment stops being
active (roll) or is closed, the files are trimmed to the entries actually written, so after a
clean shutdown `file size / entry size` is the entry count.  After a crash the active files may
still be full size with a zero tail; that fails the sanity check and the index is rebuilt.

Appends store into the mmap, but never into a page the file does not back yet: the pages ahead
of the last entry are written with zeros first (`_prepare`, PREFILL_BYTES at a time).  A write
fault on a hole of a preallocated (sparse) file costs the kernel a block allocation inside the
fault, measured at 5 ms per page on this project's ext4 machines, where a pwrite of zeros costs
tens of microseconds: without it, the first appends to 1,000 fresh partitions stall the event
loop for seconds.

Lookups are binary searches in pyk._native (index_lookup / timeindex_lookup) over the mmap.
Owned by one PartitionLog on one event loop: not thread-safe, no locking.
"""

from __future__ import annotations

import mmap
import os
import struct

from pyk import _native

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
PREFILL_BYTES = 16384  # written ahead of the entries at a time (see module docstring)
_ZEROS = bytes(PREFILL_BYTES)
NO_TIMESTAMP = -1  # Kafka RecordBatch.NO_TIMESTAMP


class CorruptIndexError(Exception):
    """An index file whose content breaks the invariants above (the caller rebuilds it)."""


class _MappedIndex:
    """Shared mechanics of the two index files: open, mmap, resize, trim, flush, close.

    `entries` counts valid entries; the mapped length bounds how many fit (`max_entries`).
    An empty inactive index has no mapping at all (mmap cannot map a zero-length file).
    """

    ENTRY_SIZE = 0

    def __init__(self, path: str, base_offset: int, max_index_size: int, active: bool) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_index_size = max_index_size
        self.existed = os.path.exists(path)  # False: created now (a missing index is rebuilt)
        # No fd is kept: the mapping stays valid after its fd is closed, and a partition with
        # many segments would otherwise hold three fds per segment instead of one (the .log).
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        # A size that is not a whole number of entries is only possible after a crash or
        # tampering; keep the whole entries and let sanity_check report it.
        self.size_aligned = size % self.ENTRY_SIZE == 0
        self.entries = size // self.ENTRY_SIZE
        self._backed = self.entries * self.ENTRY_SIZE  # leading bytes of the file known not to be a hole
        self._mm: mmap.mmap | None = None
        self._map(self._round(max_index_size) if active else size)

    def _round(self, size: int) -> int:
        return max(size - size % self.ENTRY_SIZE, self.ENTRY_SIZE)

    def _map(self, length: int) -> None:
        """(Re)maps the file at exactly `length` bytes, growing or shrinking it."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, length)
            if length > 0:
                self._mm = mmap.mmap(fd, length)
        finally:
            os.close(fd)
        self.max_entries = length // self.ENTRY_SIZE
        self.entries = min(self.entries, self.max_entries)
        self._backed = min(self._backed, length)  # a shrink made the rest a hole again

    def _prepare(self, end: int) -> None:
        """Backs the file up to at least `end` bytes with written zeros, past the entries."""
        length = self.max_entries * self.ENTRY_SIZE
        upto = min(length, max(end, self._backed + PREFILL_BYTES))
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, _ZEROS[: upto - self._backed], self._backed)
        finally:
            os.close(fd)
        self._backed = upto

    @property
    def is_full(self) -> bool:
        return self.entries >= self.max_entries

    def make_active(self) -> None:
        """Grows the file back to its preallocated size so appends have room."""
        self._map(self._round(self.max_index_size))

    def trim(self) -> None:
        """Shrinks the file to the entries written (Kafka trimToValidSize)."""
        self._map(self.entries * self.ENTRY_SIZE)

    def reset(self) -> None:
        """Drops every entry (before a rebuild); the mapping keeps its size."""
        self.entries = 0
        self.size_aligned = True

    def flush(self) -> None:
        if self._mm is not None and self.entries:
            self._mm.flush(0, self.entries * self.ENTRY_SIZE)

    def close(self) -> None:
        """Trims and unmaps; the file stays valid for the next start."""
        self.trim()
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def unmap(self) -> None:
        """Drops the mapping without trimming (segment deletion: the file is renamed, then removed)."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def _columns(self, fmt: str) -> list[tuple[int, ...]]:
        """All valid entries decoded column-wise (sanity checks only, never on a hot path)."""
        if self._mm is None or self.entries == 0:
            return [(), ()]
        raw = self._mm[: self.entries * self.ENTRY_SIZE]
        return list(zip(*struct.iter_unpack(fmt, raw), strict=True))


class OffsetIndex(_MappedIndex):
    """Sparse map: offset -> .log position, one entry per index.interval.bytes of batches."""

    ENTRY_SIZE = _OFFSET_ENTRY.size

    @property
    def last_offset(self) -> int:
        """Offset of the last entry, or the base offset when empty (Kafka lastOffset)."""
        if self.entries == 0:
            return self.base_offset
        rel: int = _OFFSET_ENTRY.unpack_from(self._mm, (self.entries - 1) * 8)[0]  # type: ignore[arg-type]
        return self.base_offset + rel

    def entry(self, slot: int) -> tuple[int, int]:
        """(absolute offset, position) of a slot."""
        rel, pos = _OFFSET_ENTRY.unpack_from(self._mm, slot * 8)  # type: ignore[arg-type]
        return self.base_offset + rel, pos

    def append(self, offset: int, position: int) -> None:
        """Adds an entry; offsets and positions must grow (checked: a violation is a bug)."""
        if self.entries:
            last_rel, last_pos = _OFFSET_ENTRY.unpack_from(self._mm, (self.entries - 1) * 8)  # type: ignore[arg-type]
            assert offset - self.base_offset > last_rel and position > last_pos, (
                f"index entry ({offset}, {position}) not after ({self.base_offset + last_rel}, {last_pos})")
        at = self.entries * 8
        if at + 8 > self._backed:
            self._prepare(at + 8)
        _OFFSET_ENTRY.pack_into(self._mm, at, offset - self.base_offset, position)  # type: ignore[arg-type]
        self.entries += 1

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """The last entry with offset <= target, as (offset, position); (base, 0) if none.

        Scanning the .log from that position finds the batch containing target, because an
        entry's offset is the LAST offset of the batch at its position.
        """
        if self.entries == 0:
            return self.base_offset, 0
        assert self._mm is not None  # entries imply a mapping
        slot = _native.index_lookup(self._mm, self.entries, target_offset - self.base_offset)
        if slot < 0:
            return self.base_offset, 0
        return self.entry(slot)

    def truncate_to(self, offset: int) -> None:
        """Drops the entries for offsets >= offset."""
        if self.entries == 0:
            return
        assert self._mm is not None
        slot = _native.index_lookup(self._mm, self.entries, offset - self.base_offset - 1)
        self.entries = slot + 1

    def sanity_check(self, log_size: int) -> None:
        """Raises CorruptIndexError if the entries break the invariants in the module docstring."""
        if not self.size_aligned:
            raise CorruptIndexError(f"{self.path}: size is not a multiple of {self.ENTRY_SIZE}")
        rels, positions = self._columns(">ii")
        _check_increasing(self.path, "relative offsets", rels, strict=True)
        _check_increasing(self.path, "positions", positions, strict=True)
        if rels and (rels[0] < 0 or positions[0] < 0):
            raise CorruptIndexError(f"{self.path}: negative first entry ({rels[0]}, {positions[0]})")
        if positions and positions[-1] >= log_size:
            raise CorruptIndexError(f"{self.path}: last position {positions[-1]} is past the log end {log_size}")


class TimeIndex(_MappedIndex):
    """Sparse map: timestamp -> offset, appended alongside OffsetIndex entries.

    One slot is kept in reserve (`is_full` is true one entry early) for the entry Kafka appends
    when a segment becomes inactive: the segment's max timestamp, so the last entry of an
    inactive segment's time index always holds that segment's largest timestamp.
    """

    ENTRY_SIZE = _TIME_ENTRY.size

    @property
    def is_full(self) -> bool:
        return self.entries >= self.max_entries - 1

    def last_entry(self) -> tuple[int, int]:
        """(timestamp, absolute offset) of the last entry, or (NO_TIMESTAMP, base) when empty."""
        if self.entries == 0:
            return NO_TIMESTAMP, self.base_offset
        return self.entry(self.entries - 1)

    def entry(self, slot: int) -> tuple[int, int]:
        ts, rel = _TIME_ENTRY.unpack_from(self._mm, slot * 12)  # type: ignore[arg-type]
        return ts, self.base_offset + rel

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Adds (timestamp, offset) if timestamp is larger than the last entry's (Kafka maybeAppend)."""
        if self.entries:
            last_ts, last_off = self.entry(self.entries - 1)
            if timestamp <= last_ts:
                return
            assert offset >= last_off, f"time index offset {offset} before {last_off}"
        if self.entries >= self.max_entries:
            return  # only the reserved slot was left and it is used: nothing more fits
        at = self.entries * 12
        if at + 12 > self._backed:
            self._prepare(at + 12)
        _TIME_ENTRY.pack_into(self._mm, at, timestamp, offset - self.base_offset)  # type: ignore[arg-type]
        self.entries += 1

    def lookup(self, target_ts: int) -> tuple[int, int]:
        """The last entry with timestamp <= target, as (timestamp, offset); (NO_TIMESTAMP, base) if none."""
        if self.entries == 0:
            return NO_TIMESTAMP, self.base_offset
        assert self._mm is not None
        slot = _native.timeindex_lookup(self._mm, self.entries, target_ts)
        if slot < 0:
            return NO_TIMESTAMP, self.base_offset
        return self.entry(slot)

    def truncate_to(self, offset: int) -> None:
        """Drops the entries for offsets >= offset (offsets are sorted, so cut at the first)."""
        n = self.entries
        while n and self.entry(n - 1)[1] >= offset:
            n -= 1
        self.entries = n

    def sanity_check(self, log_size: int) -> None:
        if not self.size_aligned:
            raise CorruptIndexError(f"{self.path}: size is not a multiple of {self.ENTRY_SIZE}")
        stamps, rels = self._columns(">qi")
        _check_increasing(self.path, "timestamps", stamps, strict=True)
        _check_increasing(self.path, "offsets", rels, strict=False)
        if rels and rels[0] < 0:
            raise CorruptIndexError(f"{self.path}: negative relative offset {rels[0]}")


def _check_increasing(path: str, what: str, values: tuple[int, ...], strict: bool) -> None:
    # sorted() and set() run in C, so checking a full 10 MB index costs milliseconds.
    items = list(values)
    if items != sorted(items) or (strict and len(set(items)) != len(items)):
        raise CorruptIndexError(f"{path}: {what} are not {'strictly ' if strict else ''}increasing")
