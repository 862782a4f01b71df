"""TransactionIndex: the `.txnindex` file of one segment, listing the aborted transactions.

Owns the aborted-transaction entries of one segment (Kafka TransactionIndex.java / AbortedTxn.java).
An entry is written when an ABORT marker lands in the segment; a read_committed fetch collects
the entries overlapping the fetched offsets and returns them as `aborted_transactions`, so the
client can drop the aborted producers' records (the broker never filters record bytes).

    .txnindex => AbortedTxn*                              34 bytes each, append only
    AbortedTxn => version:int16 (=0)
                  producer_id:int64
                  first_offset:int64                      first offset of the transaction
                  last_offset:int64                       offset of its ABORT marker
                  last_stable_offset:int64                the partition's LSO once the marker was written

Invariants: last offsets strictly increase (markers are appended in log order), and so, never
decreasing, do last stable offsets; every last offset lies in this segment.  That ordering is
what lets `collect_aborted_txns` bisect to the first entry that can matter and stop as soon as
an entry's last stable offset reaches the fetch's upper bound (Kafka's "complete" search: no
later segment can hold an aborted transaction that starts below that bound).

Lifecycle: the file is created lazily by the first abort in the segment (most segments never
have one), rebuilt by LogLoader when the segment is recovered, cut by truncate_to with the
segment, deleted with it.  The entries are kept in memory as well (loaded once at open), so a
fetch never reads the file.  Owned by one LogSegment on one event loop: no locking.
"""

from __future__ import annotations

import bisect
import os
import struct
from typing import NamedTuple

from pyk.log.index import CorruptIndexError

_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34
ABORTED_TXN_VERSION = 0


class AbortedTxn(NamedTuple):
    """One aborted transaction of a segment (field meanings in the module docstring)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    """The aborted transactions of one segment, in a lazily created append-only file."""

    def __init__(self, path: str, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._fd = -1  # opened by the first append (or at load when the file exists)
        self.entries: list[AbortedTxn] = []
        self._last_offsets: list[int] = []  # entries' last offsets, for bisection
        self.corrupt = ""  # why the file on disk cannot be trusted ("" when it can)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        if len(data) % ENTRY_SIZE:
            self.corrupt = f"{path}: size {len(data)} is not a multiple of {ENTRY_SIZE}"
            return
        for version, pid, first, last, lso in _ENTRY.iter_unpack(data):
            if version != ABORTED_TXN_VERSION or first > last or last < base_offset or (
                    self._last_offsets and last <= self._last_offsets[-1]):
                self.corrupt = f"{path}: entry {len(self.entries)} (v{version}, {first}..{last}) is out of order"
                self.entries, self._last_offsets = [], []
                return
            self.entries.append(AbortedTxn(pid, first, last, lso))
            self._last_offsets.append(last)

    def sanity_check(self) -> None:
        """Raises CorruptIndexError when the file read at open broke the invariants."""
        if self.corrupt:
            raise CorruptIndexError(self.corrupt)

    def append(self, txn: AbortedTxn) -> None:
        """Adds one aborted transaction; its marker must follow every indexed one (a bug otherwise)."""
        if self._last_offsets and txn.last_offset <= self._last_offsets[-1]:
            raise AssertionError(f"{self.path}: aborted transaction ending at {txn.last_offset} is not after "
                                 f"{self._last_offsets[-1]}")
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        entry = _ENTRY.pack(ABORTED_TXN_VERSION, *txn)
        # One write of 34 bytes: O_APPEND makes it land whole at the end (page cache, so a kill -9
        # keeps it; fdatasync comes with the segment's flush).
        if os.write(self._fd, entry) != ENTRY_SIZE:
            raise OSError(f"short write to {self.path}")
        self.entries.append(txn)
        self._last_offsets.append(txn.last_offset)

    def collect_aborted_txns(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        """(entries overlapping [fetch_offset, upper_bound_offset), complete) as Kafka's
        TransactionIndex.collectAbortedTxns; complete=True means later segments need no search."""
        i = bisect.bisect_left(self._last_offsets, fetch_offset)
        # Last stable offsets never decrease: if an entry before the first overlapping one
        # already reached the bound, the search is complete (Kafka finds that by scanning).
        if i and self.entries[i - 1].last_stable_offset >= upper_bound_offset:
            return [], True
        out = []
        for txn in self.entries[i:]:
            if txn.first_offset < upper_bound_offset:
                out.append(txn)
            if txn.last_stable_offset >= upper_bound_offset:
                return out, True
        return out, False

    def truncate_to(self, offset: int) -> None:
        """Drops the entries whose marker is at or after `offset` (the log is cut there)."""
        keep = bisect.bisect_left(self._last_offsets, offset)
        if keep == len(self.entries):
            return
        del self.entries[keep:], self._last_offsets[keep:]
        self._resize(keep * ENTRY_SIZE)

    def reset(self) -> None:
        """Drops every entry and the file (before recovery rebuilds them from the segment's
        markers; the file comes back with the first abort found)."""
        self.entries, self._last_offsets = [], []
        self.corrupt = ""
        self.delete()

    def _resize(self, size: int) -> None:
        if self._fd < 0:
            # Entries exist, so the file does (appended to before a restart, or at load).
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o644)
        os.ftruncate(self._fd, size)

    def flush(self) -> None:
        if self._fd >= 0:
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
