"""LeaderEpochFileCache: leader epoch -> first offset written in it, in `leader-epoch-checkpoint`.

Owns the partition's epoch lineage (Kafka LeaderEpochFileCache.java), used to answer
OffsetForLeaderEpoch (a follower or a consumer with KIP-320 asks "where did epoch E end?") and,
later, replica truncation.  On a single node the leader epoch is 0, so the cache normally holds
one entry `0 <first offset appended>`.

Invariants: epochs strictly increase and so do their start offsets; every start offset lies in
[log start offset, log end offset].  The file is rewritten atomically (tmp + fsync + rename) on
every change, which happens once per epoch, never per append.  The one exception is a move of
the log start (retention, DeleteRecords): `truncate_from_start(..., flush=False)` only marks the
file stale and `write_if_dirty()` (periodic checkpoint, close) writes it later, as Kafka's
truncateFromStartAsyncFlush does, so no fsync lands on the event loop.  A stale file is safe:
LogLoader truncates the cache from the log start again at the next start.
Owned by one PartitionLog on its event loop; not thread-safe.
"""

from __future__ import annotations

from pyk.log.checkpoint import read_epochs, write_epochs

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochFileCache:
    """Ordered (epoch, start_offset) entries backed by a leader-epoch-checkpoint file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[tuple[int, int]] = read_epochs(path)
        self._dirty = False  # entries changed by a deferred truncate_from_start, file not rewritten

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Records that `epoch` starts at `start_offset` (called on the first append of an epoch).

        An epoch not newer than the latest is ignored (Kafka ignores stale assignments too).
        """
        if epoch <= self.latest_epoch:
            return
        # A newer epoch starting at or before an older one's start supersedes it.
        self.entries = [(e, o) for e, o in self.entries if o < start_offset]
        self.entries.append((epoch, start_offset))
        self._write()

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as Kafka's endOffsetFor: the first offset AFTER `requested_epoch`.

        * the latest epoch ends at the log end offset;
        * an older epoch ends where the next larger epoch starts, reported with the largest
          epoch <= requested (the requested one itself if it precedes every entry);
        * an unknown larger epoch or an empty cache gives (-1, -1).
        """
        if requested_epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.latest_epoch:
            return requested_epoch, log_end_offset
        floor = None
        for epoch, start in self.entries:
            if epoch > requested_epoch:
                return (floor if floor is not None else requested_epoch), start
            floor = epoch
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET

    def truncate_from_end(self, end_offset: int) -> None:
        """Drops epochs starting at or after end_offset (the log was truncated there)."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._write()

    def truncate_from_start(self, start_offset: int, flush: bool = True) -> None:
        """The log now starts at start_offset: drop epochs that ended before it and move the
        start of the epoch containing it up to start_offset (Kafka truncateFromStart).
        flush=False defers the file write to write_if_dirty() (see module docstring)."""
        kept = [(e, o) for e, o in self.entries if o >= start_offset]
        below = [(e, o) for e, o in self.entries if o < start_offset]
        if below and (not kept or kept[0][1] > start_offset):
            kept.insert(0, (below[-1][0], start_offset))
        if kept != self.entries:
            self.entries = kept
            if flush:
                self._write()
            else:
                self._dirty = True

    def write_if_dirty(self) -> None:
        """Writes the file if a deferred truncation left it stale."""
        if self._dirty:
            self._write()

    def _write(self) -> None:
        write_epochs(self.path, self.entries)
        self._dirty = False
