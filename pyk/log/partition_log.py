"""PartitionLog: the log of one topic partition (Kafka's UnifiedLog + LocalLog roles).

Owns the segments of one `<topic>-<partition>` directory and the offsets over them:

    log_start_offset  <=  last_stable_offset  <=  high_watermark  <=  log_end_offset
    log_start_offset  <=  recovery_point  <=  log_end_offset

  * log_start_offset: first offset a consumer may read (moved by DeleteRecords / retention);
  * high_watermark: first offset not yet visible to consumers.  On a single node the leader is
    the only in-sync replica, so every append advances it to the log end offset; it is a
    separate field so replication can hold it back later;
  * last_stable_offset (LSO): first offset of the earliest open transaction, or the high
    watermark when none is open (or it starts at/after it); read_committed fetches stop there;
  * log_end_offset: the offset the next appended batch gets;
  * recovery_point: log end offset at the last flush; after an unclean shutdown recovery starts
    at the segment holding it (everything below it was fdatasync-ed).

Append path (one produced batch, no per-record Python objects): LogValidator checks and maybe
recompresses it -> ProducerStateManager deduplicates / orders idempotent batches -> roll if the
active segment is full or old -> offsets (and the leader epoch, and LogAppendTime) are written
into the batch in place -> one os.write to the active segment -> producer state, epoch cache,
high watermark, flush policy.

Transactions (KIP-98): transactional batches open a transaction of their producer
(ProducerStateManager); `append_control` writes the COMMIT/ABORT marker that ends it, indexes an
aborted one in the active segment's .txnindex and moves the LSO.  A read_committed read stops at
the LSO and carries the aborted transactions overlapping what it returns, so the client drops
their records; nothing is filtered out of the bytes (as in Kafka).

Read path: offset -> floor segment -> offset index -> find_batch over a pread window -> a
FileSlice(fd, position, size) the connection sends with sendfile; bytes never enter Python.

Threading: single-threaded.  One event loop (one process, later one per core) owns a group of
partitions and calls every method here from that loop; nothing blocks except the file I/O
itself (page-cache writes, and fdatasync only when the flush policy says so).  In a broker the
flush.messages fdatasync leaves the loop: append hands it to a group commit (on_flush_due,
begin/end_group_flush), which syncs on a thread or an io_uring and answers every produce
request waiting on it at once.  Every other sync leaves the loop too, to the threads of the
LogIO the log is given (pyk.log.io): segment writeback, the flush of rolled segments with the
producer snapshots and directory entries of their rolls, and file removal.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import LogConfig
from pyk.log.control import build_marker
from pyk.log.epoch_cache import LeaderEpochFileCache
from pyk.log.files import CLEANED_SUFFIX, SWAP_SUFFIX, fsync_dir, fsync_file, segment_paths, txn_index_path
from pyk.log.io import LogIO
from pyk.log.loader import LoadedLog, LogLoader
from pyk.log.producer_state import ProducerStateManager, last_sequence
from pyk.log.record_batch import READ_LEADER_EPOCH, READ_RECORDS_COUNT
from pyk.log.retention import Deletion, deletable_segments
from pyk.log.segment import FileSlice, LogSegment, remove_files, scan_batches
from pyk.log.segments import LogSegments
from pyk.log.txn_index import AbortedTxn
from pyk.log.validator import LogValidator

log = logging.getLogger("pyk.log")

NO_TIMESTAMP = -1
# Kafka's IsolationLevel (Fetch and ListOffsets isolation_level).
READ_UNCOMMITTED = 0
READ_COMMITTED = 1


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
    last_stable_offset: int
    # read_committed only: (producer id, first offset) of the aborted transactions overlapping
    # the records returned; None for read_uncommitted (Fetch sends null then).
    aborted_transactions: list[tuple[int, int]] | None = None


class PartitionLog:
    """The log of one partition (see module docstring for offsets, paths and threading).

    Lifecycle: built by `PartitionLog.load` (LogLoader recovery) from LogManager.load/create;
    serves appends and reads; `close()` at shutdown flushes, snapshots producer state and closes
    every file; `delete()` (LogManager.delete) closes and lets the manager remove the directory.
    `io` (the LogManager's LogIO) runs the log's background syncs and removals; it outlives the
    log (LogManager closes it after every log).
    """

    def __init__(self, directory: str, topic: str, partition: int, config: LogConfig, loaded: LoadedLog,
                 io: LogIO, now_ms: int | None = None) -> None:
        self.directory = directory
        self.io = io
        self.topic = topic
        self.partition = partition
        self.config = config
        self.segments: LogSegments = loaded.segments
        self.log_start_offset = loaded.log_start_offset
        self.log_end_offset = loaded.log_end_offset
        self.high_watermark = loaded.log_end_offset  # single node: everything written is committed
        # Replicated (a cluster): the high watermark is moved by the leader's ISR
        # (update_high_watermark), not by appends; (end offset, segment base, position) of each
        # batch appended above it, so moving it needs no index lookup.
        self.replicated = False
        self._above_hw: deque[tuple[int, int, int]] = deque()
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
        self._roll_flush_upto: int | None = None  # roll happened: flush the segments below it
        self._roll_flush: Future[None] | None = None  # that flush, running on io.roll_flush
        self._roll_flush_target = 0  # the recovery point once it completes
        self._unsynced_snapshots: list[str] = []  # producer snapshots of rolls, not yet fsynced
        self._pending_release: list[tuple[int, LogSegment]] = []  # (deadline ms, deleted segment)
        # Where the high watermark sits: (segment base offset, byte position).  Reads stop there.
        self._hw_segment_base, self._hw_position = self.segments.active.base_offset, self.segments.active.size
        # Called after the log start offset moves so LogManager can persist it at once.
        self.on_log_start_offset_change: Callable[[PartitionLog], None] | None = None
        # Set by a broker with group commit: flush.messages reached -> schedule a shared flush
        # instead of an fdatasync inside append (None: flush in line).
        self.on_flush_due: Callable[[PartitionLog], None] | None = None
        self._group_flushes = 0  # group flushes running: fds of deleted segments stay open
        # Called with the number of bytes that became readable under read_committed whenever
        # the last stable offset advances (an append outside any transaction, a marker), so
        # long-polling read_committed fetches wake up (pyk.server.purgatory).
        self.on_stable_advance: Callable[[PartitionLog, int], None] | None = None
        # ((segment base, offset), position) of the last offset -> read-limit lookup that was
        # not the high watermark (an LSO, mostly): reads up to an unchanged LSO skip the pread.
        self._position_cache: tuple[tuple[int, int], int] | None = None
        self.closed = False
        self._check_offsets()

    @classmethod
    def load(cls, directory: str, topic: str, partition: int, config: LogConfig, *, io: LogIO,
             recovery_point: int = 0, log_start_offset: int = 0, had_clean_shutdown: bool = False,
             now_ms: int | None = None) -> PartitionLog:
        """Opens (recovering if needed) or creates the log in `directory` (see LogLoader)."""
        os.makedirs(directory, exist_ok=True)
        loader = LogLoader(directory, config, recovery_point, log_start_offset, had_clean_shutdown, now_ms)
        loaded = loader.load()
        if loaded.recovered_segments:
            log.info("%s: recovered %d segment(s), truncated %d bytes; log end offset %d", directory,
                     loaded.recovered_segments, loaded.truncated_bytes, loaded.log_end_offset)
        return cls(directory, topic, partition, config, loaded, io, now_ms)

    def _check_offsets(self) -> None:
        assert self.log_start_offset <= self.last_stable_offset <= self.high_watermark <= self.log_end_offset, (
            f"{self.directory}: offsets out of order: log start {self.log_start_offset}, "
            f"last stable {self.last_stable_offset}, high watermark {self.high_watermark}, log end {self.log_end_offset}")

    # Append -------------------------------------------------------------------------------------
    def append(self, records: memoryview, now_ms: int) -> LogAppendInfo:
        """Appends exactly one produced v2 batch (a writable buffer: its header is rewritten).

        Raises KafkaError for invalid batches, fenced or out-of-order idempotent producers, a
        non-transactional batch of a producer with an open transaction, and storage failures;
        nothing is written in those cases.  Returns the assigned offsets (or, for an idempotent
        duplicate, the original ones with duplicate=True).  A producer's first transactional
        batch opens its transaction, which holds the last stable offset at its first offset.
        """
        config = self.config
        batch, info = LogValidator.validate(records, config, now_ms)
        producer_id = info.producer_id
        transactional = info.is_transactional
        if producer_id >= 0:
            last_seq = last_sequence(info.base_sequence, info.last_offset_delta)
            original = self.producer_state.check(producer_id, info.producer_epoch, info.base_sequence, last_seq,
                                                 transactional)
            if original is not None:
                return LogAppendInfo(original[0], original[1], NO_TIMESTAMP, self.log_start_offset, True)
        first_offset = self.log_end_offset
        last_offset = first_offset + info.last_offset_delta
        append_time = now_ms if config.log_append_time else NO_TIMESTAMP
        max_timestamp = now_ms if config.log_append_time else info.max_timestamp
        segment = self.segments.active
        if segment.should_roll(len(batch), max_timestamp, last_offset, now_ms, config.segment_bytes, config.roll_ms):
            segment = self.roll(now_ms)
        assigned_last = LogValidator.assign_offsets(batch, first_offset, self.leader_epoch, append_time)
        assert assigned_last == last_offset, f"assign_offsets returned {assigned_last}, expected {last_offset}"
        segment.append(batch, last_offset, max_timestamp)
        segment.start_writeback(config.writeback_bytes, self.io)
        # The batch is in the file: from here on only in-memory bookkeeping.
        self.log_end_offset = last_offset + 1
        if producer_id >= 0:
            self.producer_state.update(producer_id, info.producer_epoch, info.base_sequence, last_seq, first_offset,
                                       last_offset, max_timestamp, transactional)
        self._appended(segment, first_offset, info.records_count, now_ms)
        # Outside any open transaction the last stable offset is the high watermark, which
        # this batch just moved (unless replicated); inside one it stays at that transaction's first offset.
        if self.on_stable_advance is not None and not self.producer_state.ongoing and not self.replicated:
            self.on_stable_advance(self, len(batch))
        return LogAppendInfo(first_offset, last_offset, append_time, self.log_start_offset, False)

    def become_leader(self, leader_epoch: int) -> None:
        """Leads the partition at `leader_epoch` from its log end on (Kafka's makeLeader and
        KAFKA-7415): the epoch is recorded in the leader-epoch-checkpoint now, when the node
        takes the partition, not in the middle of its first produce."""
        self.leader_epoch = max(self.leader_epoch, leader_epoch)
        if self.leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(self.leader_epoch, self.log_end_offset)

    def append_as_follower(self, records: memoryview, now_ms: int) -> int:
        """Appends the leader's batches as they are (Kafka UnifiedLog.appendAsFollower): offsets,
        leader epochs and timestamps kept, the epoch cache following the batches' epochs, the
        producer state replayed so this replica deduplicates retries once it leads.  A partial
        last batch (the fetch's byte limit cut it) is left for the next fetch.  Returns the bytes
        appended.  The high watermark is the leader's to move (update_high_watermark)."""
        valid, positions, bases, lasts, max_timestamps = scan_batches(records)
        if not positions:
            return 0
        if bases[0] < self.log_end_offset == self.log_start_offset and lasts[0] >= self.log_end_offset:
            # The leader's log start lies inside its first batch (DeleteRecords there): start
            # the (empty) log at the batch's base instead, as Kafka's Partition does.
            self.truncate_fully_and_start_at(bases[0], now_ms)
        if bases[0] != self.log_end_offset:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR,
                             f"{self.topic}-{self.partition}: leader sent offset {bases[0]}, log end is {self.log_end_offset}")
        config = self.config
        segment = self.segments.active
        for i, start in enumerate(positions):
            batch = records[start:positions[i + 1] if i + 1 < len(positions) else valid]
            base, last = bases[i], lasts[i]
            epoch = READ_LEADER_EPOCH.unpack_from(batch)[0]
            if epoch > self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(epoch, base)
            if segment.should_roll(len(batch), max_timestamps[i], last, now_ms, config.segment_bytes, config.roll_ms):
                segment = self.roll(now_ms)
            segment.append(batch, last, max_timestamps[i])
            self.log_end_offset = last + 1
            _, completed = self.producer_state.replay_batch(batch, base, last, batch.tobytes)
            if completed is not None and completed.aborted:
                segment.update_txn_index(AbortedTxn(completed.producer_id, completed.first_offset, last,
                                                    self.producer_state.last_stable_offset_after(completed)))
            self._appended(segment, base, READ_RECORDS_COUNT.unpack_from(batch)[0], now_ms, as_leader=False)
        segment.start_writeback(config.writeback_bytes, self.io)
        return valid

    def start_replication(self, high_watermark: int) -> None:
        """The log becomes a cluster's replica: from now on its high watermark moves with the
        ISR (update_high_watermark), and it starts at `high_watermark` (the
        replication-offset-checkpoint, within the log) instead of the log end, so records this
        replica had beyond what was committed stay invisible until the ISR has them, and a
        follower that finds no epoch in common with its leader truncates to it."""
        if self.replicated:
            return
        self.replicated = True
        offset = min(max(high_watermark, self.log_start_offset), self.log_end_offset)
        if offset < self.high_watermark:
            self.high_watermark = offset
            self._position_cache = None
            segment = self.segments.floor(offset)
            assert segment is not None
            batch = segment.translate_offset(offset)
            self._hw_segment_base = segment.base_offset
            self._hw_position = batch.position if batch is not None else segment.size
            self._check_offsets()

    def update_high_watermark(self, offset: int) -> int:
        """Moves a replicated log's high watermark up to `offset` (capped at the log end; it
        never moves down): the leader when its ISR has the records, a follower from its leader's
        answer.  Returns the bytes that became visible; read_committed waiters hear of the last
        stable offset through on_stable_advance."""
        offset = min(offset, self.log_end_offset)
        old_hw = self.high_watermark
        if offset <= old_hw:
            return 0
        old_lso = self.last_stable_offset
        found = None
        while self._above_hw and self._above_hw[0][0] <= offset:
            found = self._above_hw.popleft()
        if found is not None and found[0] == offset:
            self._hw_segment_base, self._hw_position = found[1], found[2]
        else:
            segment = self.segments.floor(offset)
            assert segment is not None
            batch = segment.translate_offset(offset)
            self._hw_segment_base = segment.base_offset
            self._hw_position = batch.position if batch is not None else segment.size
        self._position_cache = None
        self.high_watermark = offset
        new_lso = self.last_stable_offset
        if self.on_stable_advance is not None and new_lso > old_lso:
            self.on_stable_advance(self, self._bytes_between(old_lso, new_lso))
        return self._bytes_between(old_hw, offset)

    def _appended(self, segment: LogSegment, first_offset: int, records_count: int, now_ms: int,
                  as_leader: bool = True) -> None:
        """Bookkeeping after a batch reached `segment`: epoch cache (a leader's; a follower's
        follows its batches), high watermark, flush policy."""
        if as_leader and self.leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(self.leader_epoch, first_offset)
        if self.replicated:
            self._above_hw.append((self.log_end_offset, segment.base_offset, segment.size))
        else:
            # Single node: the leader is the whole ISR, so the append is committed at once.
            self.high_watermark = self.log_end_offset
            self._hw_segment_base, self._hw_position = segment.base_offset, segment.size
        self.unflushed_messages += records_count
        if self.unflushed_messages >= self.config.flush_messages:
            if self.on_flush_due is None:
                self.flush(now_ms)
            else:
                self.on_flush_due(self)  # a group commit (begin/end_group_flush) flushes soon

    def append_control(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                       now_ms: int) -> int:
        """Writes a COMMIT or ABORT marker for a producer's transaction; returns its offset.

        The WriteTxnMarkers path (Kafka UnifiedLog.appendAsLeader with origin COORDINATOR): one
        control batch, then the producer's open transaction ends there -- an aborted one is
        indexed in the active segment's .txnindex -- and the last stable offset moves to the
        next open transaction or the high watermark.  A marker for a producer with no open
        transaction is written all the same (Kafka does: the coordinator may retry) and ends
        nothing.  Raises INVALID_PRODUCER_EPOCH when producer_epoch is older than the
        producer's, TRANSACTION_COORDINATOR_FENCED when coordinator_epoch is older than the
        last marker's; nothing is written then.  The caller wakes read_uncommitted fetchers
        (the marker is appended bytes); read_committed ones are woken through on_stable_advance.
        """
        self.producer_state.check_marker(producer_id, producer_epoch, coordinator_epoch)
        old_lso = self.last_stable_offset
        batch = build_marker(producer_id, producer_epoch, commit, coordinator_epoch, now_ms)
        offset = self.log_end_offset
        segment = self.segments.active
        if segment.should_roll(len(batch), now_ms, offset, now_ms, self.config.segment_bytes, self.config.segment_ms):
            segment = self.roll(now_ms)
        append_time = now_ms if self.config.log_append_time else NO_TIMESTAMP
        LogValidator.assign_offsets(memoryview(batch), offset, self.leader_epoch, append_time)
        segment.append(batch, offset, now_ms)
        self.log_end_offset = offset + 1
        completed = self.producer_state.end_txn(producer_id, producer_epoch, coordinator_epoch, commit, offset, now_ms)
        if completed is not None and completed.aborted:
            segment.update_txn_index(AbortedTxn(producer_id, completed.first_offset, offset,
                                                self.producer_state.last_stable_offset_after(completed)))
        self._appended(segment, offset, 1, now_ms)
        new_lso = self.last_stable_offset
        if self.on_stable_advance is not None and new_lso > old_lso:
            self.on_stable_advance(self, self._bytes_between(old_lso, new_lso))
        return offset

    @property
    def last_stable_offset(self) -> int:
        """First offset of the earliest open transaction, else the high watermark (Kafka
        UnifiedLog.lastStableOffset); never below the log start (DeleteRecords may pass an open
        transaction's first offset, and nothing below the log start is readable anyway)."""
        first = self.producer_state.first_unstable_offset
        if first is None or first >= self.high_watermark:
            return self.high_watermark
        return max(first, self.log_start_offset)

    def _bytes_between(self, start: int, end: int) -> int:
        """Bytes of the batches holding offsets [start, end) (batch boundaries; wake-up credit)."""
        total = 0
        for segment in self.segments.from_offset(start):
            if segment.base_offset >= end:
                break
            low = self._max_position(segment, start) if start > segment.base_offset else 0
            total += self._max_position(segment, end) - low
        return total

    def roll(self, now_ms: int | None = None) -> LogSegment:
        """Starts a new active segment at the log end offset (Kafka UnifiedLog.roll).

        The old segment is trimmed and gets its max-timestamp time-index entry; a producer-state
        snapshot at the new base offset bounds the replay needed at the next start.  Nothing
        here waits for the disk: an append that rolls runs on the event loop, where an fsync
        (which on ext4 commits the journal, itself waiting for every dirty data block allocated
        in it) stalls every partition of the shard, up to seconds behind a big segment.  So, as
        Kafka does (takeSnapshot(sync = false), then the "flush-log" task):
          * the snapshot is written and renamed into place without fsync;
          * the fdatasync of the rolled segment(s), the fsync of the snapshot(s) and of the
            directory (new segment files, snapshot renames) go to io.roll_flush as one job,
            started by the next flush_if_due (the broker's periodic timer);
          * the recovery point moves past the rolled segments only once that job completed
            (flush_if_due), so "everything below the recovery point is on disk" holds;
          * a crash before the job completed is recovered as any unclean shutdown: segments
            from the old recovery point are CRC-checked, and a snapshot lost or torn by a power
            failure is rejected by ProducerStateManager.load, which then rebuilds the producer
            state from an older snapshot and the log.
        What stays on the loop are page-cache and metadata operations: the snapshot write and
        rename, the index trims (munmap + ftruncate + mmap: the old segment's reads go on from
        the loop, so its mapping cannot change under them from another thread) and the new
        segment's files (creation, index preallocation, `preallocate` of the .log).
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
        self._unsynced_snapshots.append(self.producer_state.take_snapshot(new.base_offset, sync=False))
        self._roll_flush_upto = new.base_offset
        return new

    def _start_roll_flush(self) -> None:
        """Hands the sync of the segments rolled below `_roll_flush_upto` (with the snapshots
        and directory entries of their rolls) to io.roll_flush.  One job at a time: while one
        runs, later rolls only move `_roll_flush_upto`, and the next job starts once the running
        one completed.  Called from flush_if_due, never from roll() itself: retention rolls
        before deleting, and the job must not sync segments about to be unmapped."""
        upto = self._roll_flush_upto
        if upto is None or self._roll_flush is not None:
            return
        rolled = []
        for segment in self.segments.from_offset(self.recovery_point):
            if segment.base_offset >= upto:
                break
            rolled.append(segment)
        directory = self.directory if self._dir_dirty else None
        self._dir_dirty = False
        snapshots, self._unsynced_snapshots = self._unsynced_snapshots, []
        self._roll_flush_target = upto
        self._roll_flush = self.io.roll_flush.submit(_flush_rolled, rolled, snapshots, directory)
        self._roll_flush_upto = None

    # Read ---------------------------------------------------------------------------------------
    def read(self, fetch_offset: int, max_bytes: int, min_one_message: bool = True,
             max_offset: int | None = None, isolation_level: int = READ_UNCOMMITTED,
             to_log_end: bool = False) -> FetchDataInfo:
        """Bytes from the batch containing fetch_offset, within one segment (Kafka LocalLog.read).

        At most max_bytes (the last batch may be partial, as in Kafka; clients drop it), but the
        whole first batch when min_one_message, and nothing when the first batch alone is over
        max_bytes without it (Kafka's firstEntryIncomplete).  Never past the high watermark, nor, under
        READ_COMMITTED, the last stable offset (nor max_offset, when given).  READ_COMMITTED also
        fills aborted_transactions for the returned bytes.  records is None when there is
        nothing to send (fetch_offset at the limit or log end).  `to_log_end` (a follower's
        fetch) reads past the high watermark up to the log end.  Raises OFFSET_OUT_OF_RANGE
        outside [log_start_offset, log_end_offset].
        """
        hw = self.high_watermark
        lso = self.last_stable_offset
        if isolation_level == READ_COMMITTED:
            max_offset = lso if max_offset is None else min(max_offset, lso)
        if fetch_offset < self.log_start_offset or fetch_offset > self.log_end_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"fetch offset {fetch_offset} outside [{self.log_start_offset}, {self.log_end_offset}] "
                             f"of {self.topic}-{self.partition}")
        upper = self.log_end_offset if to_log_end else hw if max_offset is None else min(max_offset, hw)
        records = None
        segment = None
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
            if records is not None and not records.size:
                records = None  # the first batch is over max_bytes and min_one_message is off
        aborted = None
        if isolation_level == READ_COMMITTED:
            aborted = []
            if records is not None and segment is not None:
                # Kafka UnifiedLog.addAbortedTransactions: bounded by the first offset past the
                # bytes sent (an index entry after them, else the next segment, else the end).
                bound = segment.fetch_upper_bound_offset(records.position + records.size)
                if bound is None:
                    following = self.segments.higher(segment.base_offset)
                    bound = following.base_offset if following is not None else self.log_end_offset
                aborted = self.aborted_transactions(fetch_offset, bound)
        return FetchDataInfo(records, hw, self.log_start_offset, self.log_end_offset, lso, aborted)

    def aborted_transactions(self, fetch_offset: int, upper_bound_offset: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of every aborted transaction overlapping
        [fetch_offset, upper_bound_offset) (Kafka LocalLog.collectAbortedTransactions).

        An aborted transaction is indexed in the segment of its marker, which may come after
        the range; the search walks segments from the one holding fetch_offset until an entry
        shows that every transaction starting below the bound had ended (its last stable offset
        reaches the bound).
        """
        out: list[tuple[int, int]] = []
        for segment in self.segments.from_offset(fetch_offset):
            txns, complete = segment.collect_aborted_txns(fetch_offset, upper_bound_offset)
            out.extend((txn.producer_id, txn.first_offset) for txn in txns)
            if complete:
                break
        return out

    def _max_position(self, segment: LogSegment, upper: int) -> int:
        """Byte position in `segment` that a read must stop at for offsets below `upper`."""
        if upper >= segment.next_offset:
            return segment.size
        if upper == self.high_watermark and segment.base_offset == self._hw_segment_base:
            return self._hw_position
        key = (segment.base_offset, upper)
        cached = self._position_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        batch = segment.translate_offset(upper)
        position = batch.position if batch is not None else segment.size
        self._position_cache = (key, position)
        return position

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

    # Log start movement: retention and DeleteRecords ------------------------------------------
    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """One retention pass (Kafka UnifiedLog.deleteOldSegments); returns segments deleted.

        Deletes the oldest segments that breach the log start offset, retention.bytes or
        retention.ms (pyk.log.retention has the rules) and moves the log start offset to the
        first remaining segment.  Only renames and bookkeeping happen here, no data is read or
        synced, so the pass does not pause the appends and fetches sharing this event loop.
        The moved log start is checkpointed by LogManager's periodic checkpoint rather than at
        once: it always equals the first remaining segment's base offset, which LogLoader takes
        as the floor of the log start at the next start, so a crash before the checkpoint loses
        nothing (Kafka's checkpoint is periodic too).
        """
        if self._roll_flush is not None and not self._roll_flush.done():
            # The background thread may be syncing segments this pass would unmap and later
            # close: leave them to the next pass (a rolled segment's flush takes milliseconds
            # to seconds, the interval minutes by default).
            return 0
        now = int(time.time() * 1000) if now_ms is None else now_ms
        deletable = deletable_segments(list(self.segments), log_start_offset=self.log_start_offset,
                                       high_watermark=self.high_watermark, log_end_offset=self.log_end_offset,
                                       config=self.config, now_ms=now)
        return self._delete_segments(deletable, now)

    def delete_records_before(self, offset: int, now_ms: int | None = None) -> int:
        """DeleteRecords: moves the log start offset up to `offset`; returns the new log start.

        Whole segments entirely below it are deleted at once, asynchronously like retention's
        (renamed to `.deleted`, removed after file.delete.delay.ms so in-flight sends finish);
        the active segment always stays.  Unlike retention's, the new start lies inside a
        segment, so it is persisted through on_log_start_offset_change (LogManager's checkpoint)
        before any file is renamed.  Raises OFFSET_OUT_OF_RANGE above the high watermark.
        """
        if offset > self.high_watermark or offset < 0:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"cannot delete records before {offset}: outside [0, high watermark {self.high_watermark}]")
        if offset <= self.log_start_offset:
            return self.log_start_offset
        self._increment_log_start_offset(offset, "DeleteRecords")
        # Persist the new start BEFORE renaming files: a crash in between then leaves extra
        # segments below a durable log start (harmless, deleted again by the next retention
        # pass) rather than a log start that silently moves back to the first remaining segment.
        if self.on_log_start_offset_change is not None:
            self.on_log_start_offset_change(self)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        deletable = deletable_segments(list(self.segments), log_start_offset=offset,
                                       high_watermark=self.high_watermark, log_end_offset=self.log_end_offset,
                                       config=self.config, now_ms=now, apply_retention=False)
        self._delete_segments(deletable, now)
        return offset

    def _delete_segments(self, deletable: list[Deletion], now_ms: int) -> int:
        """Deletes a prefix of the segments (Kafka UnifiedLog.deleteSegments): log start offset
        first, then the segments leave the lookup map and their files are renamed; the files go
        file.delete.delay.ms later (flush_if_due)."""
        if not deletable:
            return 0
        doomed = [d.segment for d in deletable]
        if len(doomed) == len(self.segments):
            # A log always has a segment: every one breached (the active one's data expired
            # too), so roll an empty one at the log end first, as Kafka does.
            if self.roll(now_ms) is doomed[-1]:
                doomed.pop()  # roll() kept an already empty active segment (not deletable anyway)
        if not doomed:
            return 0
        for d in deletable[: len(doomed)]:
            log.info("%s: deleting segment %s due to %s", self.directory, d.segment, d.reason)
        nxt = self.segments.higher(doomed[-1].base_offset)
        assert nxt is not None, "the active segment is never in the doomed prefix"
        self._increment_log_start_offset(nxt.base_offset, "segment deletion")
        for segment in doomed:
            self._delete_segment(segment, now_ms)
        # Deleted segments needed no flush; the recovery point may never point below the log.
        self.recovery_point = max(self.recovery_point, self.segments.first.base_offset)
        return len(doomed)

    def _increment_log_start_offset(self, offset: int, reason: str) -> None:
        """Moves the log start offset up (never down) and trims what describes data below it
        (Kafka maybeIncrementLogStartOffset); the epoch file write is deferred (no fsync here)."""
        if offset <= self.log_start_offset:
            return
        old_lso = self.last_stable_offset
        self.log_start_offset = offset
        self._check_offsets()
        log.info("%s: incremented log start offset to %d due to %s", self.directory, offset, reason)
        self.producer_state.truncate_head(offset)
        self.epoch_cache.truncate_from_start(offset, flush=False)
        # Forgetting a producer whose batches are all gone also ends its open transaction.
        new_lso = self.last_stable_offset
        if self.on_stable_advance is not None and new_lso > max(old_lso, offset):
            self.on_stable_advance(self, self._bytes_between(max(old_lso, offset), new_lso))

    def truncate_fully_and_start_at(self, offset: int, now_ms: int | None = None) -> None:
        """Empties the log and restarts it at `offset` (Kafka truncateFullyAndStartAt): a follower
        whose log ends below its leader's log start (retention or DeleteRecords there) cannot
        fetch where it is, so it starts over where the leader's log starts."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        doomed = list(self.segments)
        self._position_cache = None
        self._above_hw.clear()
        self.log_start_offset = self.high_watermark = self.log_end_offset = self.recovery_point = offset
        active = self.roll(now)  # an empty active segment at `offset`
        for segment in doomed:
            if segment is not active:
                self._delete_segment(segment, now)
        self._hw_segment_base, self._hw_position = active.base_offset, 0
        self.epoch_cache.truncate_from_end(0)  # every epoch started below `offset`: none is kept
        self.producer_state.load(self.segments, offset, offset)
        self._check_offsets()
        log.warning("%s: truncated fully, the log now starts at %d", self.directory, offset)
        if self.on_log_start_offset_change is not None:
            self.on_log_start_offset_change(self)

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
        self._position_cache = None
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
        self._above_hw = deque(e for e in self._above_hw if e[0] <= self.log_end_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self._hw_segment_base, self._hw_position = active.base_offset, active.size
        if self.high_watermark < self.log_end_offset:
            batch = active.translate_offset(self.high_watermark)
            self._hw_position = batch.position if batch is not None else active.size
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        self.producer_state.load(self.segments, self.log_start_offset, self.log_end_offset)
        self._check_offsets()

    def replace_segments(self, base_offset: int, old: list[LogSegment], now_ms: int | None = None,
                         on_step: Callable[[str], None] | None = None) -> bool:
        """Swaps the cleaner's `<base_offset>.*.cleaned` files in for the segments `old` (Kafka
        LocalLog.replaceSegments); returns False, removing the .cleaned files, when `old` is no
        longer exactly a run of inactive segments of this log (retention, DeleteRecords,
        truncation or deletion raced the cleaner).

        Crash safety comes from the order of renames, each completed before the next starts:
          1. `.cleaned` -> `.swap` (the .log first, then its indexes), directory fsynced: from
             here LogLoader finishes the swap after a crash (it deletes the segments the .swap
             covers and renames it live); before it, LogLoader discards the .cleaned files and
             the old segments are untouched;
          2. the old segments are deleted (their fds stay open for file.delete.delay.ms, so
             reads already handed a FileSlice finish);
          3. `.swap` -> live, directory fsynced, and the new segment replaces the old ones in
             the segment map.
        Runs on the log's event loop, so appends and reads never see a half-swapped map.
        `on_step(name)` is called after steps "swap", "delete" (first old segment gone) and
        "live" (the kill -9 tests' fault-injection hook).
        """
        step = on_step or (lambda _name: None)
        cleaned: tuple[str, ...] = segment_paths(self.directory, base_offset, CLEANED_SUFFIX)
        txn_index = txn_index_path(self.directory, base_offset)
        current = [self.segments.floor(seg.base_offset) for seg in old]
        active = self.segments.active
        # The roll flusher thread may be syncing the very segments this swap would unmap (the
        # cleaner takes segments as soon as they roll); refused like retention, retried later.
        flushing = self._roll_flush is not None and not self._roll_flush.done()
        if (self.closed or not old or flushing
                or any(c is not seg or seg is active for c, seg in zip(current, old, strict=True))):
            for path in (*cleaned, txn_index + CLEANED_SUFFIX):
                _unlink_quiet(path)
            return False
        swap: tuple[str, ...] = segment_paths(self.directory, base_offset, SWAP_SUFFIX)
        # The cleaner writes a `.txnindex.cleaned` only when the cleaned range keeps an ABORT
        # marker; it travels with the set (renamed last, so a crash before it is a roll-back).
        if os.path.exists(txn_index + CLEANED_SUFFIX):
            cleaned, swap = (*cleaned, txn_index + CLEANED_SUFFIX), (*swap, txn_index + SWAP_SUFFIX)
        for src, dst in zip(cleaned, swap, strict=True):
            os.rename(src, dst)
        fsync_dir(self.directory)
        step("swap")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        for i, seg in enumerate(old):
            self._delete_segment(seg, now)
            if i == 0:
                step("delete")
        live: tuple[str, ...] = segment_paths(self.directory, base_offset)
        if len(swap) > len(live):
            live = (*live, txn_index)
        for src, dst in zip(swap, live, strict=True):
            os.rename(src, dst)
        fsync_dir(self.directory)
        step("live")
        config = self.config
        new = LogSegment(self.directory, base_offset, index_interval_bytes=config.index_interval_bytes,
                         max_index_size=config.segment_index_bytes, active=False, created_ms=now)
        if not new.load_tail():
            new.recover()  # unreachable for a segment the cleaner wrote and flushed; safe
        self.segments.add(new)
        # A cached read bound (the LSO's position) may point into a replaced segment that had
        # the same base offset.
        self._position_cache = None
        return True

    @property
    def roll_flush(self) -> Future[None] | None:
        """The background flush of rolled segments in flight, if any (the cleaner waits for it
        before a swap, which replace_segments refuses meanwhile)."""
        return self._roll_flush

    def _delete_segment(self, segment: LogSegment, now_ms: int) -> None:
        # Out of the lookup map first: no new read can pick the segment; reads already handed
        # out keep its fd until the release deadline.
        self.segments.remove(segment.base_offset)
        segment.delete()
        self._pending_release.append((now_ms + self.config.file_delete_delay_ms, segment))

    # Flush --------------------------------------------------------------------------------------
    def flush(self, now_ms: int | None = None) -> None:
        """fdatasyncs every segment holding data past the recovery point (and the producer
        snapshots of rolls not yet synced), then moves the recovery point to the log end offset
        (everything below it is now on disk)."""
        for segment in self.segments.from_offset(self.recovery_point):
            if segment.next_offset > self.recovery_point or segment is self.segments.active:
                segment.flush()
        for path in self._unsynced_snapshots:
            fsync_file(path)
        self._unsynced_snapshots = []
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
        and the removal of deleted segments whose file.delete.delay.ms has passed (fds closed
        here, files unlinked on the background deleter)."""
        if self._pending_release and not self._group_flushes:
            keep = []
            expired: list[str] = []
            for deadline, segment in self._pending_release:
                if deadline <= now_ms:
                    expired += segment.release()
                else:
                    keep.append((deadline, segment))
            self._pending_release = keep
            if expired:
                self.io.file_delete.submit(remove_files, expired)
        if self.unflushed_messages and now_ms - self.last_flush_ms >= self.config.flush_ms:
            self.flush(now_ms)
            return
        if self._roll_flush is not None and self._roll_flush.done():
            self._roll_flush.result()  # an fdatasync error surfaces here, on the owning loop
            self.recovery_point = max(self.recovery_point, self._roll_flush_target)
            self._roll_flush = None
        self._start_roll_flush()  # a roll came while the previous job ran

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
        self._close_cleanly(keep_log_fds=False)
        # No connection is sending any more: deleted segments go now, not after their delay.
        self.release_files()

    def close_for_handover(self) -> list[int]:
        """Closes the log as cleanly as `close` (flushed, producer state and leader epochs
        written) for another shard to open its directory, but returns the .log fds (also of
        segments awaiting deletion) instead of closing them: FileSlices already handed to this
        shard's connections keep sending from them until the caller closes them after
        file.delete.delay.ms."""
        fds = self._close_cleanly(keep_log_fds=True)
        for _, segment in self._pending_release:
            if segment.fd >= 0:
                fds.append(segment.fd)
                segment.fd = -1
            segment.deleted_paths = []  # they moved with the directory; its new owner removes them
        self._pending_release = []
        return fds

    def _close_cleanly(self, keep_log_fds: bool) -> list[int]:
        if self._roll_flush is not None:
            self._roll_flush.result()
            self._roll_flush = None
        self.flush()
        self.producer_state.take_snapshot(self.log_end_offset)
        self.epoch_cache.write_if_dirty()
        fds = [segment.close(keep_log_fds) for segment in self.segments]
        self.closed = True
        return [fd for fd in fds if fd >= 0]

    def close_for_delete(self) -> None:
        """Stops the log without flushing (the partition is being deleted; LogManager renamed
        its directory): the indexes are unmapped, the .log fds stay open for in-flight sends
        until release_files(), called after file.delete.delay.ms."""
        for segment in self.segments:
            segment.delete()  # renames nothing: the files are in the renamed directory
        self.closed = True

    def release_files(self) -> None:
        """Closes every remaining fd of deleted segments (and of every segment of a deleted
        log) and removes their `.deleted` files."""
        for segment in self.segments:
            remove_files(segment.release())  # a closed segment has nothing left to release
        for _, segment in self._pending_release:
            remove_files(segment.release())
        self._pending_release = []

    def __repr__(self) -> str:
        return (f"PartitionLog({self.topic}-{self.partition}, start={self.log_start_offset}, "
                f"hw={self.high_watermark}, end={self.log_end_offset}, segments={len(self.segments)})")


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _flush_rolled(segments: list[LogSegment], snapshots: list[str], directory: str | None) -> None:
    """The roll flush job, on io.roll_flush (Kafka's "flush-log" task): the fdatasync of a full
    1 GiB segment takes seconds.  Rolled segments are immutable (appends go to the new active
    segment), retention and the cleaner leave them alone while the job runs, and a deleted
    segment keeps its fd for file.delete.delay.ms, so the thread never races an append or a
    close; the recovery point only moves, on the loop, once the whole job completed.  The
    snapshots' data is synced before the directory, whose fsync makes their names (and the new
    segment files) durable."""
    for segment in segments:
        segment.flush()
    for path in snapshots:
        fsync_file(path)
    if directory is not None:
        fsync_dir(directory)
