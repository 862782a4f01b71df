"""LogSegments: the ordered set of a partition's segments, keyed by base offset.

Owns only the ordering (Kafka LogSegments.java uses a ConcurrentSkipListMap; one event loop owns
a pyk log, so a sorted list of base offsets plus a dict is enough).  Floor lookups answer "which
segment holds offset o" in O(log n) with bisect.

Invariants: base offsets are unique and sorted; each segment's data lies below the next
segment's base offset; the last segment is the active one (appends go there).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

from pyk.log.segment import LogSegment


class LogSegments:
    """Sorted base offset -> LogSegment map of one PartitionLog (same thread, no locking)."""

    def __init__(self) -> None:
        # Two views of one set, always updated together: the sorted list answers floor and
        # successor queries by bisection, the dict maps a base offset to its segment.
        self._bases: list[int] = []
        self._by_base: dict[int, LogSegment] = {}

    def add(self, segment: LogSegment) -> None:
        assert segment.base_offset not in self._by_base, f"duplicate segment {segment.base_offset}"
        insort(self._bases, segment.base_offset)
        self._by_base[segment.base_offset] = segment

    def remove(self, base_offset: int) -> LogSegment:
        segment = self._by_base.pop(base_offset)
        del self._bases[bisect_left(self._bases, base_offset)]
        return segment

    def floor(self, offset: int) -> LogSegment | None:
        """The segment with the largest base offset <= offset."""
        i = bisect_right(self._bases, offset)
        return self._by_base[self._bases[i - 1]] if i else None

    def higher(self, base_offset: int) -> LogSegment | None:
        """The segment after the one starting at base_offset."""
        i = bisect_right(self._bases, base_offset)
        return self._by_base[self._bases[i]] if i < len(self._bases) else None

    def from_offset(self, offset: int) -> Iterator[LogSegment]:
        """Segments that may hold offsets >= offset: the floor segment and all after it."""
        # An offset below the first base still starts at the first segment (max(..., 0)).
        i = max(bisect_right(self._bases, offset) - 1, 0)
        for base in self._bases[i:]:
            yield self._by_base[base]

    @property
    def active(self) -> LogSegment:
        return self._by_base[self._bases[-1]]

    @property
    def first(self) -> LogSegment:
        return self._by_base[self._bases[0]]

    def __iter__(self) -> Iterator[LogSegment]:
        # Iterates a copy so callers may delete segments while walking (retention, DeleteRecords).
        return (self._by_base[b] for b in list(self._bases))

    def __len__(self) -> int:
        return len(self._bases)

    def __bool__(self) -> bool:
        return bool(self._bases)
