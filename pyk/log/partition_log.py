"""PartitionLog: the log of one topic partition (Kafka's UnifiedLog + LocalLog roles).

Owns the segments of one `<topic>-<partition>` directory and the offsets over them:

    log_start_offset  <=  recovery_point, high_watermark  <=  log_end_offset

  * log_start_offset: first offset a consumer may read (moved by DeleteRecords / retention);
  * high_watermark: first offset not yet visible to consumers.  On a single node the leader is
    the only in-sync replica, so every append advances it to the log end offset; it is a
    separate field so replication can hold it back later;
  * log_end_offset: the offset the next appended batch gets;
  * recovery_point: log end offset at the last flush; after an unclean shutdown recovery starts
    at the segment holding it (everything below it was fdatasync-ed).

Append path (one produced batch, no per-record Python objects): LogValidator checks and maybe
recompresses it -> ProducerStateManager deduplicates / orders idempotent batches -> roll if the
active segment is full or old -> offsets (and the leader epoch, and LogAppendTime) are written
into the batch in place -> one os.write to the active segment -> producer state, epoch cache,
high watermark, flush policy.

Read path: offset -> floor segment -> offset index -> find_batch over a pread window -> a
FileSlice(fd, position, size) the connection sends with sendfile; bytes never enter Python.

Threading: single-threaded.  One event loop (one process, later one per core) owns a group of
partitions and calls every method here from that loop; nothing blocks except the file I/O
itself (page-cache writes, and fdatasync only when the flush policy says so).  In a broker the
flush.messages fdatasync leaves the loop: append hands it to a group commit (on_flush_due,
begin/end_group_flush), which syncs on a thread or an io_uring and answers every produce
request waiting on it at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import LogConfig
from pyk.log.epoch_cache import LeaderEpochFileCache
from pyk.log.files import fsync_dir
from pyk.log.loader import LoadedLog, LogLoader
from pyk.log.producer_state import ProducerStateManager, last_sequence
from pyk.log.segment import FileSlice, LogSegment
from pyk.log.segments import LogSegments
from pyk.log.validator import LogValidator

log = logging.getLogger("pyk.log")

NO_TIMESTAMP = -1


@dataclass(slots=True)
class LogAppendInfo:
    """Result of one append, as ProduceResponse needs it.

    duplicate=True: an idempotent retry of a batch already in the log; the offsets are the
    original batch's and nothing was written.  log_append_time is -1 under CreateTime.
    """

    first_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool = False


@dataclass(slots=True)
class GroupFlush:
    """One log's share of a group commit: the .log fds to fdatasync, the directory to fsync
    (a segment file was created since its last fsync) and the offset that is durable after."""

    fds: list[int]
    directory: str | None
    target: int


@dataclass(slots=True)
class FetchDataInfo:
    """Result of one read: the bytes to send (None: nothing to send) and the partition offsets."""

    records: FileSlice | None
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    last_stable_offset: int  # == high_watermark until transactions exist


class PartitionLog:
    """The log of one partition (see module docstring for offsets, paths and threading).

    Lifecycle: built by `PartitionLog.load` (LogLoader recovery) from LogManager.load/create;
    serves appends and reads; `close()` at shutdown flushes, snapshots producer state and closes
    every file; `delete()` (LogManager.delete) closes and lets the manager remove the directory.
    """

    def __init__(self, directory: str, topic: str, partition: int, config: LogConfig, loaded: LoadedLog,
                 now_ms: int | None = None) -> None:
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.config = config
        self.segments: LogSegments = loaded.segments
        self.log_start_offset = loaded.log_start_offset
        self.log_end_offset = loaded.log_end_offset
        self.high_watermark = loaded.log_end_offset  # single node: everything written is committed
        self.recovery_point = loaded.recovery_point
        self.epoch_cache: LeaderEpochFileCache = loaded.epoch_cache
        self.producer_state: ProducerStateManager = loaded.producer_state
        # Leader epoch stamped into appended batches; 0 on a single node (set by the cluster
        # layer later).  The cache records where each epoch's first append landed.
        self.leader_epoch = max(self.epoch_cache.latest_epoch, 0)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self.unflushed_messages = 0
        self.last_flush_ms = now
        self._dir_dirty = False  # a segment file was created since the last directory fsync
        self._roll_flush_upto: int | None = None  # roll happened: flush the old segments soon
        self._roll_flush: Future[None] | None = None  # that flush, running on the background thread
        self._roll_flush_target = 0  # the recovery point once it completes
        self._pending_release: list[tuple[int, LogSegment]] = []  # (deadline ms, deleted segment)
        # Where the high watermark sits: (segment base offset, byte position).  Reads stop there.
        self._hw_segment_base, self._hw_position = self.segments.active.base_offset, self.segments.active.size
        # Called after the log start offset moves so LogManager can persist it at once.
        self.on_log_start_offset_change: Callable[[PartitionLog], None] | None = None
        # Set by a broker with group commit: flush.messages reached -> schedule a shared flush
        # instead of an fdatasync inside append (None: flush in line).
        self.on_flush_due: Callable[[PartitionLog], None] | None = None
        self._group_flushes = 0  # group flushes running: fds of deleted segments stay open
        self.closed = False
        self._check_offsets()

    @classmethod
    def load(cls, directory: str, topic: str, partition: int, config: LogConfig, *, recovery_point: int = 0,
             log_start_offset: int = 0, had_clean_shutdown: bool = False, now_ms: int | None = None) -> PartitionLog:
        """Opens (recovering if needed) or creates the log in `directory` (see LogLoader)."""
        os.makedirs(directory, exist_ok=True)
        loader = LogLoader(directory, config, recovery_point, log_start_offset, had_clean_shutdown, now_ms)
        loaded = loader.load()
        if loaded.recovered_segments:
            log.info("%s: recovered %d segment(s), truncated %d bytes; log end offset %d", directory,
                     loaded.recovered_segments, loaded.truncated_bytes, loaded.log_end_offset)
        return cls(directory, topic, partition, config, loaded, now_ms)

    def _check_offsets(self) -> None:
        assert self.log_start_offset <= self.high_watermark <= self.log_end_offset, (
            f"{self.directory}: offsets out of order: log start {self.log_start_offset}, "
            f"high watermark {self.high_watermark}, log end {self.log_end_offset}")

    # Append -------------------------------------------------------------------------------------
    def append(self, records: memoryview, now_ms: int) -> LogAppendInfo:
        """Appends exactly one produced v2 batch (a writable buffer: its header is rewritten).

        Raises KafkaError for invalid batches, fenced or out-of-order idempotent producers, and
        storage failures; nothing is written in those cases.  Returns the assigned offsets (or,
        for an idempotent duplicate, the original ones with duplicate=True).
        """
        config = self.config
        batch, info = LogValidator.validate(records, config, now_ms)
        producer_id = info.producer_id
        if producer_id >= 0:
            last_seq = last_sequence(info.base_sequence, info.last_offset_delta)
            original = self.producer_state.check(producer_id, info.producer_epoch, info.base_sequence, last_seq)
            if original is not None:
                return LogAppendInfo(original[0], original[1], NO_TIMESTAMP, self.log_start_offset, True)
        first_offset = self.log_end_offset
        last_offset = first_offset + info.last_offset_delta
        append_time = now_ms if config.log_append_time else NO_TIMESTAMP
        max_timestamp = now_ms if config.log_append_time else info.max_timestamp
        segment = self.segments.active
        if segment.should_roll(len(batch), max_timestamp, last_offset, now_ms, config.segment_bytes, config.segment_ms):
            segment = self.roll(now_ms)
        assigned_last = LogValidator.assign_offsets(batch, first_offset, self.leader_epoch, append_time)
        assert assigned_last == last_offset, f"assign_offsets returned {assigned_last}, expected {last_offset}"
        segment.append(batch, last_offset, max_timestamp)
        # The batch is in the file: from here on only in-memory bookkeeping.
        self.log_end_offset = last_offset + 1
        if producer_id >= 0:
            self.producer_state.update(producer_id, info.producer_epoch, info.base_sequence, last_seq, first_offset,
                                       last_offset, max_timestamp)
        if self.leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(self.leader_epoch, first_offset)
        # Single node: the leader is the whole ISR, so the append is committed at once.
        self.high_watermark = self.log_end_offset
        self._hw_segment_base, self._hw_position = segment.base_offset, segment.size
        self.unflushed_messages += info.records_count
        if self.unflushed_messages >= config.flush_messages:
            if self.on_flush_due is None:
                self.flush(now_ms)
            else:
                self.on_flush_due(self)  # a group commit (begin/end_group_flush) flushes soon
        return LogAppendInfo(first_offset, last_offset, append_time, self.log_start_offset, False)

    def roll(self, now_ms: int | None = None) -> LogSegment:
        """Starts a new active segment at the log end offset (Kafka UnifiedLog.roll).

        The old segment is trimmed and gets its max-timestamp time-index entry; its fdatasync is
        left to the next flush_if_due (the periodic timer), as Kafka schedules it asynchronously,
        so an append never waits for a whole segment to reach the disk.  A producer-state
        snapshot at the new base offset bounds the replay needed at the next start.
        """
        now = int(time.time() * 1000) if now_ms is None else now_ms
        old = self.segments.active
        if old.size == 0 and old.base_offset == self.log_end_offset:
            return old  # already an empty segment at the log end
        old.on_become_inactive()
        config = self.config
        new = LogSegment(self.directory, self.log_end_offset, index_interval_bytes=config.index_interval_bytes,
                         max_index_size=config.segment_index_bytes, active=True, created_ms=now,
                         preallocate_bytes=config.segment_bytes if config.preallocate else 0)
        self.segments.add(new)
        self._dir_dirty = True
        self._roll_flush_upto = new.base_offset
        self.producer_state.take_snapshot(new.base_offset)
        return new

    # Read ---------------------------------------------------------------------------------------
    def read(self, fetch_offset: int, max_bytes: int, min_one_message: bool = True,
             max_offset: int | None = None) -> FetchDataInfo:
        """Bytes from the batch containing fetch_offset, within one segment (Kafka LocalLog.read).

        At most max_bytes (the last batch may be partial, as in Kafka; clients drop it), but the
        whole first batch when min_one_message.  Never past the high watermark (nor max_offset,
        when given, e.g. a last stable offset).  records is None when there is nothing to send
        (fetch_offset at the high watermark or log end).  Raises OFFSET_OUT_OF_RANGE outside
        [log_start_offset, log_end_offset].
        """
        hw = self.high_watermark
        if fetch_offset < self.log_start_offset or fetch_offset > self.log_end_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"fetch offset {fetch_offset} outside [{self.log_start_offset}, {self.log_end_offset}] "
                             f"of {self.topic}-{self.partition}")
        upper = hw if max_offset is None else min(max_offset, hw)
        records = None
        if fetch_offset < upper:
            segment = self.segments.floor(fetch_offset)
            while segment is not None and records is None:
                records = segment.read(fetch_offset, max_bytes, self._max_position(segment, upper), min_one_message)
                if records is None:
                    # fetch_offset lies past this segment's last batch (a gap): the next segment
                    # starts at or after it.
                    segment = self.segments.higher(segment.base_offset)
                    if segment is not None and segment.base_offset >= upper:
                        break
        return FetchDataInfo(records, hw, self.log_start_offset, self.log_end_offset, hw)

    def _max_position(self, segment: LogSegment, upper: int) -> int:
        """Byte position in `segment` that a read must stop at for offsets below `upper`."""
        if upper >= segment.next_offset:
            return segment.size
        if upper == self.high_watermark and segment.base_offset == self._hw_segment_base:
            return self._hw_position
        batch = segment.translate_offset(upper)
        return batch.position if batch is not None else segment.size

    # Offsets lookups ----------------------------------------------------------------------------
    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp`, or None.

        For ListOffsets with a real timestamp.  The special values are the caller's (documented
        choice): -1 latest -> high_watermark, -2 earliest -> log_start_offset, -3 max timestamp ->
        max_timestamp_and_offset().  Records at or past the high watermark are not reported.
        """
        for segment in self.segments:
            if segment.size == 0 or segment.max_timestamp < timestamp:
                continue
            found = segment.find_offset_by_timestamp(timestamp, self.log_start_offset)
            if found is not None:
                return found if found[0] < self.high_watermark else None
        return None

    def max_timestamp_and_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp (KIP-734), or None."""
        best: LogSegment | None = None
        for segment in self.segments:
            if segment.size and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None or best.max_timestamp == NO_TIMESTAMP:
            return None
        offset = best.first_offset_with_timestamp(best.max_timestamp)
        if offset is None:
            return None
        return offset, best.max_timestamp

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch; (-1, -1) if unknown (Kafka semantics)."""
        return self.epoch_cache.end_offset_for(epoch, self.log_end_offset)

    # Log start movement -------------------------------------------------------------------------
    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: moves the log start offset up to `offset`; returns the new log start.

        Whole segments entirely below it are removed (their files at once, their fds after
        file.delete.delay.ms so in-flight sends finish); the active segment always stays.  The
        new start is persisted through on_log_start_offset_change (LogManager's checkpoint).
        Raises OFFSET_OUT_OF_RANGE above the high watermark.
        """
        if offset > self.high_watermark or offset < 0:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"cannot delete records before {offset}: outside [0, high watermark {self.high_watermark}]")
        if offset <= self.log_start_offset:
            return self.log_start_offset
        self.log_start_offset = offset
        self._check_offsets()
        # Persist the new start BEFORE removing files: a crash in between then leaves extra
        # segments below a durable log start (harmless, removed again next time) rather than
        # a log start that silently moves back to the first remaining segment.
        if self.on_log_start_offset_change is not None:
            self.on_log_start_offset_change(self)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        while len(self.segments) > 1:
            nxt = self.segments.higher(self.segments.first.base_offset)
            if nxt is None or nxt.base_offset > offset:
                break
            self._delete_segment(self.segments.first, now)
        self.producer_state.truncate_head(offset)
        self.epoch_cache.truncate_from_start(offset)
        # Deleted segments needed no flush; the recovery point may never point below the log.
        self.recovery_point = max(self.recovery_point, self.segments.first.base_offset)
        return offset

    def truncate_to(self, offset: int, now_ms: int | None = None) -> None:
        """Removes every batch at or after `offset` (Kafka UnifiedLog.truncateTo; a follower
        truncating to its leader's epoch end offset).  `offset` must be a batch boundary.

        Segments starting at or after it are deleted, the one containing it is cut, then the
        high watermark, recovery point, epoch cache and producer state follow the new end (the
        producer state is rebuilt from its snapshots, which may no longer be past the end).
        """
        if offset >= self.log_end_offset:
            return
        offset = max(offset, self.log_start_offset)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        for segment in list(self.segments):
            if segment.base_offset >= offset and len(self.segments) > 1:
                self._delete_segment(segment, now)
        active = self.segments.active
        if active.base_offset >= offset:
            # Even the first remaining segment starts past the cut: empty it in place.
            active.truncate_to(active.base_offset)
        else:
            active.truncate_to(offset)
        active.make_active()
        self.log_end_offset = active.next_offset
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self._hw_segment_base, self._hw_position = active.base_offset, active.size
        if self.high_watermark < self.log_end_offset:
            batch = active.translate_offset(self.high_watermark)
            self._hw_position = batch.position if batch is not None else active.size
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        self.producer_state.load(self.segments, self.log_start_offset, self.log_end_offset)
        self._check_offsets()

    def _delete_segment(self, segment: LogSegment, now_ms: int) -> None:
        self.segments.remove(segment.base_offset)
        segment.delete()
        self._pending_release.append((now_ms + self.config.file_delete_delay_ms, segment))

    # Flush --------------------------------------------------------------------------------------
    def flush(self, now_ms: int | None = None) -> None:
        """fdatasyncs every segment holding data past the recovery point, then moves the recovery
        point to the log end offset (everything below it is now on disk)."""
        for segment in self.segments.from_offset(self.recovery_point):
            if segment.next_offset > self.recovery_point or segment is self.segments.active:
                segment.flush()
        if self._dir_dirty:
            fsync_dir(self.directory)
            self._dir_dirty = False
        self.recovery_point = self.log_end_offset
        self.unflushed_messages = 0
        self._roll_flush_upto = None
        self.last_flush_ms = int(time.time() * 1000) if now_ms is None else now_ms

    def begin_group_flush(self) -> GroupFlush:
        """Starts a group-commit flush (pyk.server.engine.GroupCommit): what to fdatasync, run
        off the event loop, to make everything appended so far durable.

        Only the .log files are synced, not the index mmaps: the recovery point may still move,
        because LogLoader checks the indexes of every segment at start-up (an index entry past
        the end of its .log, which a lost index page cannot create, or a short one, triggers a
        rebuild) and a stale sparse index only lengthens a lookup.  Appends may go on while the
        sync runs; the target is the log end offset now, which everything written before is
        below.  The fds stay open until end_group_flush (deleted segments' release waits).
        """
        fds = [segment.fd for segment in self.segments.from_offset(self.recovery_point)
               if segment.next_offset > self.recovery_point or segment is self.segments.active]
        directory = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        self.unflushed_messages = 0
        self._group_flushes += 1
        return GroupFlush(fds, directory, self.log_end_offset)

    def end_group_flush(self, work: GroupFlush, ok: bool, now_ms: int) -> None:
        """The sync of `work` finished: on success everything below its target is on disk."""
        self._group_flushes -= 1
        if ok:
            self.recovery_point = max(self.recovery_point, min(work.target, self.log_end_offset))
            self.last_flush_ms = now_ms
        elif work.directory is not None:
            self._dir_dirty = True  # the directory still needs its fsync

    def flush_if_due(self, now_ms: int) -> None:
        """The periodic timer's entry point: flush.ms policy, post-roll flush of old segments,
        and closing the fds of deleted segments whose delay has passed."""
        if self._pending_release and not self._group_flushes:
            keep = []
            for deadline, segment in self._pending_release:
                if deadline <= now_ms:
                    segment.release()
                else:
                    keep.append((deadline, segment))
            self._pending_release = keep
        if self.unflushed_messages and now_ms - self.last_flush_ms >= self.config.flush_ms:
            self.flush(now_ms)
        elif self._roll_flush is not None:
            if self._roll_flush.done():
                self._roll_flush.result()  # an fdatasync error surfaces here, on the owning loop
                self.recovery_point = max(self.recovery_point, self._roll_flush_target)
                self._roll_flush = None
        elif self._roll_flush_upto is not None:
            upto = self._roll_flush_upto
            rolled = []
            for segment in self.segments.from_offset(self.recovery_point):
                if segment.base_offset >= upto:
                    break
                rolled.append(segment)
            directory = self.directory if self._dir_dirty else None
            self._dir_dirty = False
            self._roll_flush_target = upto
            self._roll_flush = _ROLL_FLUSHER.submit(_flush_rolled, rolled, directory)
            self._roll_flush_upto = None

    # Config and lifecycle -----------------------------------------------------------------------
    def update_config(self, config: LogConfig) -> None:
        """New topic settings; they apply from the next append (segment size, flush, ...)."""
        self.config = config
        for segment in self.segments:
            segment.index_interval_bytes = config.index_interval_bytes

    def close(self) -> None:
        """Clean shutdown of this log: flush, producer snapshot at the log end, close files."""
        if self.closed:
            return
        if self._roll_flush is not None:
            self._roll_flush.result()
            self._roll_flush = None
        self.flush()
        self.producer_state.take_snapshot(self.log_end_offset)
        for segment in self.segments:
            segment.close()
        for _, segment in self._pending_release:
            segment.release()
        self._pending_release = []
        self.closed = True

    def close_for_delete(self) -> None:
        """Stops the log without flushing (the partition is being deleted): files are removed,
        fds stay open until release_files(), called after file.delete.delay.ms."""
        for segment in self.segments:
            segment.delete()
        self.closed = True

    def release_files(self) -> None:
        """Closes every remaining fd of a deleted log."""
        for segment in self.segments:
            segment.release()
        for _, segment in self._pending_release:
            segment.release()
        self._pending_release = []

    def __repr__(self) -> str:
        return (f"PartitionLog({self.topic}-{self.partition}, start={self.log_start_offset}, "
                f"hw={self.high_watermark}, end={self.log_end_offset}, segments={len(self.segments)})")


# Flushes of rolled segments run on one background thread, as Kafka's "flush-log" scheduler task
# does: the fdatasync of a full 1 GiB segment takes seconds, which on the event loop would stall
# every partition of the shard.  Rolled segments are immutable (appends go to the new active
# segment) and a deleted segment keeps its fd for file.delete.delay.ms, so the thread never races
# an append or a close; the recovery point only moves, on the loop, once the flush completed.
_ROLL_FLUSHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyk-roll-flush")


def _flush_rolled(segments: list[LogSegment], directory: str | None) -> None:
    for segment in segments:
        segment.flush()
    if directory is not None:
        fsync_dir(directory)
