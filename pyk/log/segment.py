"""LogSegment: one `.log` file of record batches plus its `.index`, `.timeindex` and `.txnindex`.

Owns the bytes of one segment (Kafka LogSegment.java): appending an already validated batch,
keeping the sparse indexes, turning an offset into a file position, serving a `FileSlice` of the
file to a fetch, truncation, flushing, and `recover()` (rebuild from the .log after a crash).

    .log       => RecordBatch*            batches back to back, offsets strictly increasing
    .index     => see pyk.log.index.OffsetIndex
    .timeindex => see pyk.log.index.TimeIndex
    .txnindex  => see pyk.log.txn_index.TransactionIndex (only once a transaction aborts here)

Invariants:
  * `size` is the number of valid bytes of the .log; every byte below it belongs to a complete
    batch that was written with one os.write before its append returned (so a process kill,
    which leaves the page cache intact, never loses it).  With `preallocate` the file may be
    longer than `size`; the tail is zeros and is trimmed when the segment becomes inactive.
  * `base_offset <= first batch's base offset`, and `next_offset` is one past the last batch's
    last offset (== base_offset while empty).
  * Index entries point at batch boundaries below `size`; an OffsetIndex entry's offset is the
    LAST offset of the batch at its position (Kafka's choice), so lookup(o) + a forward scan
    always reaches the batch containing o.
  * `max_timestamp` / `offset_of_max_timestamp` cover every batch of the segment (batch-level
    "shallow" offset: the last offset of the batch that first reached the maximum).

Lifecycle: created active (indexes preallocated) by PartitionLog.roll or loaded by LogLoader;
`on_become_inactive()` when the next segment is rolled; `close()` on shutdown; `delete()` +
`release()` when retention/DeleteRecords drops it.  Deletion is asynchronous, as in Kafka
(LogSegment.changeFileSuffixes + the "delete-file" task): `delete()` only renames the files to
`<name>.deleted` and keeps the .log fd open, so a FileSlice already handed to a connection stays
sendable; `release()`, file.delete.delay.ms later, closes the fd and hands back the renamed
files, which `remove_files` unlinks on the LogIO file_delete thread (pyk.log.io).

Owned by one PartitionLog on one event loop thread; no locking.  No per-record Python objects on
append/read: batches are handled as opaque byte ranges, headers are read with struct.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.files import DELETED_SUFFIX, segment_paths, txn_index_path
from pyk.log.index import NO_TIMESTAMP, OffsetIndex, TimeIndex
from pyk.log.record_batch import (
    ATTR_COMPRESSION_MASK,
    ATTR_TIMESTAMP_TYPE,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    READ_ATTRIBUTES,
    READ_BASE_TIMESTAMP,
    READ_LAST_OFFSET_DELTA,
    READ_MAX_TIMESTAMP,
    READ_OFFSET_LENGTH,
    READ_RECORDS_COUNT,
)
from pyk.log.txn_index import AbortedTxn, TransactionIndex

if TYPE_CHECKING:
    from pyk.log.io import LogIO

# Bytes read per pread by the header walks of loading and timestamp lookups (not per fetch).
SCAN_WINDOW = 64 * 1024
# Bytes read per pread during recovery, which checks every byte (CRC) of the segment.
RECOVERY_CHUNK = 8 * 1024 * 1024


@dataclass(slots=True)
class FileSlice:
    """A byte range of an open segment file, sent by the connection with os.sendfile.

    `fd` stays open while the segment is part of the log and for file.delete.delay.ms after it
    is deleted; the bytes in [position, position + size) are immutable batches (only recovery
    and replica truncation ever shorten a file, and never below the high watermark).
    """

    fd: int
    position: int
    size: int


@dataclass(slots=True)
class BatchPosition:
    """Where a batch sits in a segment: its file position, total size and last offset."""

    position: int
    size: int
    base_offset: int
    last_offset: int


class LogSegment:
    """One segment of a partition log (see module docstring for format, invariants, lifecycle)."""

    def __init__(self, directory: str, base_offset: int, *, index_interval_bytes: int, max_index_size: int,
                 active: bool, created_ms: int, preallocate_bytes: int = 0, file_suffix: str = "") -> None:
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        # file_suffix: the cleaner writes a segment as `<base>.log.cleaned` (+ indexes) and
        # renames it live later; every other segment has none.
        self.log_path, index_path, time_index_path = segment_paths(directory, base_offset, file_suffix)
        existed = os.path.exists(self.log_path)
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        if not existed and preallocate_bytes > 0:
            # Preallocation (Kafka `preallocate`): reserve the blocks now so appends do not
            # extend the file; the zero tail beyond `size` is trimmed when the segment goes
            # inactive, and a crash before that leaves zeros that recovery truncates.
            os.posix_fallocate(self.fd, 0, preallocate_bytes)
            self.size = 0
        else:
            self.size = os.fstat(self.fd).st_size
        self.preallocated = not existed and preallocate_bytes > 0
        os.lseek(self.fd, self.size, os.SEEK_SET)
        self.writeback_position = 0  # bytes below it have had their writeback started
        self._writeback: Future[None] | None = None
        self.offset_index = OffsetIndex(index_path, base_offset, max_index_size, active)
        self.time_index = TimeIndex(time_index_path, base_offset, max_index_size, active)
        self.txn_index = TransactionIndex(txn_index_path(directory, base_offset), base_offset)
        self.created_ms = created_ms
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        # Max timestamp of the first batch: the reference point of time-based rolling (Kafka
        # rollingBasedTimestamp).  None while the segment is empty.
        self.rolling_based_timestamp: int | None = None
        self.bytes_since_last_index_entry = 0
        self.active = active  # the last segment of its log: the one appends go to
        self.deleted_paths: list[str] = []  # files renamed by delete(), removed after release()

    # Loading ----------------------------------------------------------------------------------
    def sanity_check(self) -> None:
        """Raises CorruptIndexError when an index is inconsistent with itself or the .log."""
        self.offset_index.sanity_check(self.size)
        self.time_index.sanity_check(self.size)
        self.txn_index.sanity_check()

    def load_tail(self) -> bool:
        """Derives next_offset and the timestamps from the indexes plus a walk of the tail.

        Used for segments that are not recovered (below the recovery point, or after a clean
        shutdown).  Starts at the last offset-index entry, whose batch must end at exactly that
        entry's offset, and walks headers to the end of the file.  Returns False when the walk
        does not land exactly on `size` or the index entry does not match its batch: the caller
        then rebuilds the segment with recover().
        """
        start_offset, position = self.offset_index.lookup(self.offset_index.last_offset)
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry()
        self.next_offset = self.base_offset
        first = True
        end = position
        for batch, max_ts in self._walk(position):
            if first and self.offset_index.entries and batch.last_offset != start_offset:
                return False
            first = False
            if batch.base_offset < self.next_offset:
                return False
            self._track(batch.last_offset, max_ts)
            end = batch.position + batch.size
        if end != self.size:
            return False
        if self.time_index.entries and self.time_index.last_entry()[1] >= self.next_offset:
            return False  # a time index entry points past the data
        self._load_rolling_timestamp()
        return True

    def _load_rolling_timestamp(self) -> None:
        if self.size >= BATCH_HEADER_SIZE:
            header = os.pread(self.fd, BATCH_HEADER_SIZE, 0)
            self.rolling_based_timestamp = READ_MAX_TIMESTAMP.unpack_from(header)[0]
        else:
            self.rolling_based_timestamp = None

    def _track(self, last_offset: int, max_timestamp: int) -> None:
        self.next_offset = last_offset + 1
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset

    def _walk(self, position: int, end: int | None = None) -> Iterator[tuple[BatchPosition, int]]:
        """(batch, max_timestamp) for each complete batch from `position` up to `end` (default: size)."""
        for batch, header in self.iter_headers(position, end):
            yield batch, READ_MAX_TIMESTAMP.unpack_from(header)[0]

    def iter_headers(self, position: int = 0, end: int | None = None) -> Iterator[tuple[BatchPosition, bytes]]:
        """(batch, its BATCH_HEADER_SIZE-byte header) for each batch from `position` up to `end` (default: size).

        Reads headers only (no CRC): callers are loading trusted data or searching it.  Stops at
        the first header that is truncated or has an impossible length.  Batches larger than the
        read window are skipped by their length without reading their bodies.
        """
        end = self.size if end is None else end
        while position + BATCH_HEADER_SIZE <= end:
            window = os.pread(self.fd, min(SCAN_WINDOW, end - position), position)
            at = 0
            while at + BATCH_HEADER_SIZE <= len(window):
                base, length = READ_OFFSET_LENGTH.unpack_from(window, at)
                size = length + LOG_OVERHEAD
                if length < BATCH_HEADER_SIZE - LOG_OVERHEAD or position + at + size > end:
                    return
                last = base + READ_LAST_OFFSET_DELTA.unpack_from(window, at)[0]
                yield BatchPosition(position + at, size, base, last), window[at: at + BATCH_HEADER_SIZE]
                at += size
            if at == 0:
                return
            position += at

    # Append -----------------------------------------------------------------------------------
    def should_roll(self, batch_size: int, max_timestamp: int, last_offset: int, now_ms: int,
                    segment_bytes: int, segment_ms: int) -> bool:
        """Kafka's LogSegment.shouldRoll: full by size, old by time, an index full, or an
        offset that no longer fits a 32-bit relative offset.  An empty segment never rolls on
        size or time (rolling it would create another empty segment at the same base offset).
        """
        if last_offset - self.base_offset > 0x7FFFFFFF:
            return True
        if self.size == 0:
            return False
        if self.size > segment_bytes - batch_size:
            return True
        if self.rolling_based_timestamp is not None and self.rolling_based_timestamp >= 0:
            waited = max_timestamp - self.rolling_based_timestamp
        else:
            waited = now_ms - self.created_ms
        if waited > segment_ms:
            return True
        return self.offset_index.is_full or self.time_index.is_full

    def append(self, batch: memoryview | bytes | bytearray, last_offset: int, max_timestamp: int) -> None:
        """Writes one batch (offsets already assigned) with a single os.write, then indexes it.

        The write goes to the page cache before this returns: the batch survives a kill -9 of
        the process.  A short or failed write (disk full) is undone by truncating back to the
        previous size, so the file never holds a partial batch that later appends would bury.
        """
        position = self.size
        length = len(batch)
        try:
            written = os.write(self.fd, batch)
        except OSError as exc:
            self._undo_write(position)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"write to {self.log_path} failed: {exc}") from None
        if written != length:
            self._undo_write(position)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR,
                             f"short write to {self.log_path}: {written} of {length} bytes")
        self.size = position + length
        if self.rolling_based_timestamp is None:
            self.rolling_based_timestamp = max_timestamp
        self._track(last_offset, max_timestamp)
        # Index after the write, as Kafka does: an entry only ever points at bytes on file.
        if self.bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += length

    def start_writeback(self, every_bytes: int, io: LogIO) -> None:
        """Starts the kernel's writeback of the bytes appended since the last call, once there
        are `every_bytes` of them (0: never).

        Without it, appended data sits dirty in the page cache until the kernel's thresholds
        (vm.dirty_background_ratio, 30 s age) trigger a flush of gigabytes at once, which then
        throttles every writer; started in small steps, the disk keeps pace with the log.  It is
        sync_file_range(SYNC_FILE_RANGE_WRITE) on the LogIO writeback thread (a request can
        block while the disk queue is full): asynchronous, no wait and
        no durability promise (that is flush.messages / flush.ms).  One request per segment is
        in flight; a busy disk makes the next one cover more bytes, never queue more requests.
        """
        # Whole pages only: the next append writes into the last, partial page, which must not
        # be under writeback then (devices with stable writes would make the append wait).
        end = self.size & ~(_PAGE_SIZE - 1)
        pending = end - self.writeback_position
        if not every_bytes or pending < every_bytes or _sync_file_range is None:
            return
        if self._writeback is not None and not self._writeback.done():
            return
        self._writeback = io.writeback.submit(_start_writeback, self.fd, self.writeback_position, pending)
        self.writeback_position = end

    @property
    def writeback(self) -> Future[None] | None:
        """The last writeback request submitted (None before the first); done once it ran."""
        return self._writeback

    def _undo_write(self, position: int) -> None:
        os.ftruncate(self.fd, position)
        os.lseek(self.fd, position, os.SEEK_SET)

    # Read -------------------------------------------------------------------------------------
    def translate_offset(self, offset: int, start_position: int = 0) -> BatchPosition | None:
        """The first batch at or after `start_position` whose last offset is >= `offset`.

        Starts from the offset index's floor entry (or start_position if further on) and walks
        batch headers from there.  None if no such batch.
        """
        _, position = self.offset_index.lookup(offset)
        # In C (pyk._native.segment_find_batch): windows of the file read into a stack buffer,
        # so a fetch allocates no window and no Python object per batch header it passes.
        found = _native.segment_find_batch(self.fd, max(position, start_position), self.size, offset)
        return None if found is None else BatchPosition(*found)

    def read_batch(self, batch: BatchPosition) -> bytes:
        """The whole bytes of one batch (control batches at recovery; never a fetch path)."""
        return os.pread(self.fd, batch.size, batch.position)

    def fetch_upper_bound_offset(self, end_position: int) -> int | None:
        """An offset no record below `end_position` reaches (Kafka OffsetIndex.fetchUpperBoundOffset):
        the offset of the first index entry at or after that position, None if there is none.

        An entry's offset is the last offset of a batch that starts at its position, so every
        batch ending at or before `end_position` lies below it.  Bounds the aborted-transaction
        search of a read_committed fetch to the bytes actually sent.
        """
        index = self.offset_index
        lo, hi = 0, index.entries
        while lo < hi:  # first slot whose position >= end_position (positions increase)
            mid = (lo + hi) // 2
            if index.entry(mid)[1] < end_position:
                lo = mid + 1
            else:
                hi = mid
        return index.entry(lo)[0] if lo < index.entries else None

    def update_txn_index(self, txn: AbortedTxn) -> None:
        """Indexes a transaction aborted by a marker written to this segment."""
        self.txn_index.append(txn)

    def collect_aborted_txns(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        return self.txn_index.collect_aborted_txns(fetch_offset, upper_bound_offset)

    def read(self, start_offset: int, max_size: int, max_position: int, min_one_message: bool) -> FileSlice | None:
        """A slice starting at the batch containing start_offset (Kafka LogSegment.read).

        At most max_size bytes (a partial last batch is allowed; clients discard it) and never
        past max_position (the high watermark's position when it lies in this segment).  With
        min_one_message the first batch is served whole even if larger than max_size, so a
        consumer can always make progress; without it, a first batch larger than max_size gives
        an empty slice (Kafka's firstEntryIncomplete, answered with no records from Fetch v3 on:
        a partial first batch is bytes a client cannot use, and kafka-python fails on them).
        None if no batch at/after start_offset lies below max_position.
        """
        batch = self.translate_offset(start_offset)
        if batch is None or batch.position >= max_position:
            return None
        if not min_one_message and max_size < batch.size:
            return FileSlice(self.fd, batch.position, 0)
        limit = max(max_size, batch.size) if min_one_message else max_size
        size = min(max_position - batch.position, limit)
        if size <= 0:
            return None
        return FileSlice(self.fd, batch.position, size)

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp`, or None.

        Kafka's findOffsetByTimestamp: the time index gives an offset before which no record can
        qualify; scan batches from its position for the first whose max timestamp qualifies,
        then find the record inside it (ListOffsets only, not a hot path).
        """
        _, indexed_offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(max(indexed_offset, starting_offset))
        for batch, max_ts in self._walk(position):
            if max_ts >= timestamp and batch.last_offset >= starting_offset:
                return self._record_at_or_after(batch, timestamp, starting_offset)
        return None

    def _record_at_or_after(self, batch: BatchPosition, timestamp: int, starting_offset: int) -> tuple[int, int]:
        data = os.pread(self.fd, batch.size, batch.position)
        attributes = READ_ATTRIBUTES.unpack_from(data)[0]
        max_ts = READ_MAX_TIMESTAMP.unpack_from(data)[0]
        if attributes & ATTR_TIMESTAMP_TYPE:
            # LogAppendTime: every record carries the batch's max timestamp.
            return max(batch.base_offset, starting_offset), max_ts
        for offset, ts in record_timestamps(data):
            if ts >= timestamp and offset >= starting_offset:
                return offset, ts
        return batch.last_offset, max_ts  # unreachable for a consistent batch; a safe answer

    def first_offset_with_timestamp(self, timestamp: int) -> int | None:
        """Offset of the first record whose timestamp equals `timestamp` (max-timestamp lookups)."""
        found = self.find_offset_by_timestamp(timestamp, self.base_offset)
        return found[0] if found is not None and found[1] == timestamp else None

    # Maintenance ------------------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuilds the indexes by CRC-checking every batch; truncates a torn or corrupt tail.

        Walks the file in chunks with pyk._native.scan_batches, which stops at the first batch
        that is incomplete, fails its CRC or is otherwise invalid.  A batch that merely crosses
        the chunk end is re-read whole; anything else ends the valid data: the bytes after it
        are truncated (they were never acknowledged as a whole, or are damaged).  Offsets must
        also strictly increase, starting at or above the segment's base offset.  Returns the
        number of bytes truncated.
        """
        # Rebuild into full-size (preallocated) index files: a trimmed or missing index has no
        # room for the entries; an inactive segment's files are trimmed again at the end.
        self.offset_index.make_active()
        self.time_index.make_active()
        self.offset_index.reset()
        self.time_index.reset()
        self.bytes_since_last_index_entry = 0
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        file_size = os.fstat(self.fd).st_size
        position = 0
        want = RECOVERY_CHUNK
        while position < file_size:
            chunk = os.pread(self.fd, min(want, file_size - position), position)
            want = RECOVERY_CHUNK
            valid, positions, bases, lasts, max_timestamps = scan_batches(chunk)
            stop = False
            for i in range(len(positions)):
                if bases[i] < self.next_offset:
                    # Offsets went backwards: not a continuation of this log.
                    valid = positions[i]
                    stop = True
                    break
                end = positions[i + 1] if i + 1 < len(positions) else valid
                self._recover_one(position + positions[i], end - positions[i], lasts[i], max_timestamps[i])
            position += valid
            if stop:
                break
            if valid == len(chunk):
                continue
            # scan stopped inside the chunk: a batch crossing the chunk end is re-read whole,
            # anything else (torn header, bad CRC, zero preallocated tail) ends the log here.
            rest = len(chunk) - valid
            if rest >= LOG_OVERHEAD:
                length = READ_OFFSET_LENGTH.unpack_from(chunk, valid)[1]
                needed = length + LOG_OVERHEAD
                if length >= BATCH_HEADER_SIZE - LOG_OVERHEAD and needed > rest and position + needed <= file_size:
                    want = needed
                    continue
            break
        truncated = file_size - position
        if truncated:
            os.ftruncate(self.fd, position)
        self.size = position
        self.preallocated = False
        os.lseek(self.fd, position, os.SEEK_SET)
        if self.max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        if not self.active:
            self.offset_index.trim()
            self.time_index.trim()
        self._load_rolling_timestamp()
        return truncated

    def _recover_one(self, position: int, size: int, last_offset: int, max_timestamp: int) -> None:
        """Index bookkeeping for one recovered batch, identical to append()'s."""
        self._track(last_offset, max_timestamp)
        if self.bytes_since_last_index_entry > self.index_interval_bytes and not self.offset_index.is_full:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size

    def truncate_to(self, offset: int) -> int:
        """Removes every batch whose last offset is >= offset (Kafka truncateTo).

        Callers pass batch boundaries (a log end offset, a high watermark); a batch containing
        `offset` is removed whole.  Returns the bytes removed.
        """
        batch = self.translate_offset(offset)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        if batch is None:
            return 0
        removed = self.size - batch.position
        os.ftruncate(self.fd, batch.position)
        os.lseek(self.fd, batch.position, os.SEEK_SET)
        self.size = batch.position
        self.bytes_since_last_index_entry = 0
        if not self.load_tail():
            self.recover()
        return removed

    def flush(self) -> None:
        """fdatasync the .log and msync the indexes (data first: an index never leads the log)."""
        os.fdatasync(self.fd)
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def make_active(self) -> None:
        """Preallocates the index files again (a loaded last segment takes new appends)."""
        self.offset_index.make_active()
        self.time_index.make_active()
        self.active = True

    def on_become_inactive(self) -> None:
        """At roll: record the segment's max timestamp in the time index (Kafka does the same,
        using the slot TimeIndex keeps in reserve), trim the indexes and a preallocated .log."""
        if self.max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.active = False
        self.offset_index.trim()
        self.time_index.trim()
        if self.preallocated:
            os.ftruncate(self.fd, self.size)
            self.preallocated = False

    def close(self, keep_log_fd: bool = False) -> int:
        """Trims and closes every file; the segment is consistent on disk afterwards.

        With `keep_log_fd` the .log fd stays open and is returned (-1 otherwise): the partition
        was handed to another shard, and FileSlices already given to connections still send
        from it until its owner closes it after file.delete.delay.ms."""
        self.on_become_inactive()
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()
        fd, self.fd = self.fd, -1
        if not keep_log_fd:
            os.close(fd)
            return -1
        return fd

    @property
    def largest_timestamp(self) -> int:
        """What time retention compares with retention.ms (Kafka LogSegment.largestTimestamp):
        the largest record timestamp, or the file's modification time when no batch has one."""
        if self.max_timestamp != NO_TIMESTAMP:
            return self.max_timestamp
        return os.fstat(self.fd).st_mtime_ns // 1_000_000

    def delete(self) -> None:
        """Asynchronous deletion, step 1: unmaps the indexes and renames every file of the
        segment (.log, .index, .timeindex and a .txnindex if present) to `<name>.deleted`.

        Renames only, no data read or synced: the segment leaves the directory's live set at
        once (a restart removes `.deleted` files) at the cost of a few metadata operations on
        the event loop.  The .log fd stays open, so FileSlices already handed to connections
        keep sending from the renamed file until release().  Files already gone (the whole
        partition directory was renamed away by a topic deletion) are skipped.
        """
        self.offset_index.unmap()
        self.time_index.unmap()
        self.txn_index.close()
        for path in (self.log_path, self.offset_index.path, self.time_index.path, self.txn_index.path):
            try:
                os.rename(path, path + DELETED_SUFFIX)
            except FileNotFoundError:
                continue
            self.deleted_paths.append(path + DELETED_SUFFIX)

    def delete_now(self) -> None:
        """Deletes a segment no reader can hold a slice of (start-up, before serving)."""
        self.delete()
        remove_files(self.release())

    def release(self) -> list[str]:
        """Asynchronous deletion, step 2 (after file.delete.delay.ms, when no FileSlice can
        still refer to the fd): closes the .log fd and returns the `.deleted` files to remove.

        Closing first is cheap (the renamed file is still linked, so no blocks are freed);
        the unlink that frees them is left to the caller, normally `remove_files` on the
        background deleter.
        """
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        paths, self.deleted_paths = self.deleted_paths, []
        return paths

    def __repr__(self) -> str:
        return f"LogSegment(base={self.base_offset}, size={self.size}, next={self.next_offset})"


_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of dirty pages in the range, do not wait
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _libc_sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's sync_file_range (Linux), absent elsewhere; ctypes releases the GIL around calls."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _libc_sync_file_range()


def _start_writeback(fd: int, offset: int, nbytes: int) -> None:
    # Only a hint to the kernel: a failure (the segment was deleted and its fd closed) costs
    # nothing, and a real I/O error surfaces at the next fdatasync.
    assert _sync_file_range is not None  # start_writeback submits nothing without it
    if _sync_file_range(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE) != 0:
        logging.getLogger("pyk.log").debug("sync_file_range(%d, %d, %d) failed: %s", fd, offset, nbytes,
                                           os.strerror(ctypes.get_errno()))


def remove_files(paths: Iterable[str]) -> None:
    """Unlinks files of deleted segments; one already gone is not an error (deletion is idempotent).

    Unlinking frees the blocks, which takes milliseconds per GiB on ext4/xfs: the broker runs
    this on the LogIO file_delete thread, and only for files whose fds are already closed."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def scan_batches(buf: bytes | memoryview) -> tuple[int, Sequence[int], Sequence[int], Sequence[int], Sequence[int]]:
    """pyk._native.scan_batches over a whole buffer: (valid bytes, positions, base offsets,
    last offsets, max timestamps), positions relative to the buffer start."""
    valid, positions, bases, lasts, max_timestamps = _native.scan_batches(buf, 0)
    return valid, positions, bases, lasts, max_timestamps


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """Zigzag varint at `at`: (value, next position)."""
    shift = 0
    raw = 0
    while True:
        byte = data[at]
        at += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), at
        shift += 7


def record_timestamps(batch: bytes) -> Iterator[tuple[int, int]]:
    """(offset, timestamp) of each record of a CreateTime batch.  Compressed batches are first
    rewritten uncompressed with pyk._native.recompress_batch.  Used by timestamp lookups only.

        Record => length:varint attributes:int8 timestampDelta:varlong offsetDelta:varint ...
    """
    if READ_ATTRIBUTES.unpack_from(batch)[0] & ATTR_COMPRESSION_MASK:
        batch = _native.recompress_batch(batch, 0)
    base_offset = READ_OFFSET_LENGTH.unpack_from(batch, 0)[0]
    first_ts = READ_BASE_TIMESTAMP.unpack_from(batch)[0]
    count = READ_RECORDS_COUNT.unpack_from(batch)[0]
    at = BATCH_HEADER_SIZE
    for _ in range(count):
        length, body = _varint(batch, at)
        ts_delta, after = _varint(batch, body + 1)
        offset_delta, _ = _varint(batch, after)
        yield base_offset + offset_delta, first_ts + ts_delta
        at = body + length
