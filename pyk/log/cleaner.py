"""LogCleaner: log compaction of `cleanup.policy=compact` partitions (Kafka LogCleaner.scala,
Cleaner.java, LogCleanerManager.java).

Owns, for the logs of one LogManager (one shard process):
  * the choice of what to clean (LogCleanerManager.grabFilthiestCompactedLog): a log is split at
    its first dirty offset (persisted per log dir in `cleaner-offset-checkpoint`, Kafka's file
    and format) into a clean head and a dirty tail, and the dirty tail ends at the first
    uncleanable offset: the active segment, the first segment younger than
    min.compaction.lag.ms, and the last stable offset (`_first_uncleanable_offset`).  The log
    with the highest dirty ratio = dirty bytes / (clean + dirty bytes) above its
    min.cleanable.dirty.ratio is cleaned, or any log whose oldest dirty record is older than
    max.compaction.lag.ms;
  * one cleaning pass (Cleaner.doClean):
      1. the offset map: key -> offset of its latest record over the dirty section, built with
         pyk._native.OffsetMap (xxhash64 slots in a fixed buffer of at most
         log.cleaner.dedupe.buffer.size / log.cleaner.threads bytes).  A map that fills up
         stops the section early (end offset = last offset put + 1); the rest is left dirty
         for the next pass, so a bounded map cleans any log in several passes;
      2. every segment from the log start up to that end offset is rewritten, in groups of
         consecutive segments whose combined size fits segment.bytes (Kafka
         groupSegmentsBySize), into one `<base>.log.cleaned` file set per group.  A record
         is kept if it is the latest of its key (offset >= map entry) or lies past the map's
         range; a tombstone (null value) until its batch's delete horizon (KIP-534: the first
         pass that keeps a tombstone stamps its batch with now + delete.retention.ms, so a
         consumer reading from the start has that long to see it; a log whose earliest
         horizon passed is cleaned again even below its dirty ratio).  Batches keep their base
         offset, last offset, producer fields and timestamps (offsets of survivors never
         change; gaps are fine); a batch is re-encoded only when records were removed, with
         its own codec.  The last batch of each producer still in the producer state is
         kept, as a header-only batch if all its records went, so idempotent producers keep
         their sequence numbers across cleaning (Kafka does the same); such a header goes
         once its producer has a later batch;
      2b. transactions (Kafka CleanedTransactionMetadata, see _TransactionWalk): the aborted
         transactions come from the log's .txnindex entries, snapshotted with the plan.  Records
         of an aborted transaction never enter the offset map (an aborted later value must not
         make the committed earlier one look superseded) and are dropped when rewriting,
         whatever the map says (their header stays if it is the producer's last batch).  A
         marker stays while a batch of its transaction is still in the output; once none is,
         it gets a delete horizon like a tombstone (KIP-534) and a pass after that drops it.
         Each ABORT marker kept brings its .txnindex entry, verbatim, into
         `<base>.txnindex.cleaned`, swapped in with the rest of the set;
      3. each group is swapped in on the log's event loop (PartitionLog.replace_segments:
         `.cleaned` -> `.swap` -> live, each step crash-safe, see there and LogLoader), then
         the checkpoint moves to the end offset.

Threading: log.cleaner.threads daemon threads per shard.  The choice of a log, the snapshot of
its segment list and the swap run on the shard's event loop (call_soon_threadsafe), where the
log is single-threaded; reading segments (own fds: a segment deleted meanwhile stays readable),
hashing and filtering run on the cleaner thread, and pyk._native releases the GIL over large
batches.  Inactive segments are immutable, and the swap checks that the segments it replaces
are still the log's, so a cleaning raced by retention or deletion is simply dropped.

Fault injection for the kill -9 tests only: PYK_CLEANER_CRASH_AT=<step> makes the process
exit at once (os._exit, like a kill -9) at that step: "cleaned" (the .cleaned set is written
and flushed), "swap", "delete", "live" (see PartitionLog.replace_segments).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyk import _native
from pyk.log.checkpoint import CheckpointError, read_offsets, write_offsets
from pyk.log.files import CLEANED_SUFFIX, CLEANER_OFFSET_CHECKPOINT, segment_paths, txn_index_path
from pyk.log.partition_log import PartitionLog
from pyk.log.record_batch import (
    ATTR_COMPRESSION_MASK,
    ATTR_DELETE_HORIZON,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    READ_LENGTH,
    read_header,
    write_header,
)
from pyk.log.segment import LogSegment
from pyk.log.txn_index import AbortedTxn, TransactionIndex

log = logging.getLogger("pyk.log.cleaner")

CRASH_ENV = "PYK_CLEANER_CRASH_AT"
CRASH_STEPS = ("cleaned", "swap", "delete", "live")
_CRASH_EXIT_CODE = 77
_INT32_MAX = 0x7FFFFFFF
_OFFSET_INDEX_ENTRY = 8
_TIME_INDEX_ENTRY = 12
# Bytes per OffsetMap slot (ext/offset_map.pxd).
_MAP_SLOT_BYTES = 16
# Seconds a cleaner thread waits for a call it scheduled on the event loop before it looks at
# its stop flag again (the loop may be busy, or shutting down).
_LOOP_WAIT_S = 0.5

T = TypeVar("T")
TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class CleanerConfig:
    """The broker-level cleaner keys (Kafka names, see pyk/config.py)."""

    enable: bool = True
    threads: int = 1
    dedupe_buffer_size: int = 134217728
    io_buffer_size: int = 524288
    io_buffer_load_factor: float = 0.9
    backoff_ms: int = 15000

    @classmethod
    def from_server(cls, server: Mapping[str, Any]) -> CleanerConfig:
        return cls(enable=bool(server["log.cleaner.enable"]), threads=int(server["log.cleaner.threads"]),
                   dedupe_buffer_size=int(server["log.cleaner.dedupe.buffer.size"]),
                   io_buffer_size=int(server["log.cleaner.io.buffer.size"]),
                   io_buffer_load_factor=float(server["log.cleaner.io.buffer.load.factor"]),
                   backoff_ms=int(server["log.cleaner.backoff.ms"]))


@dataclass
class CleanerStats:
    """What one pass did (Kafka CleanerStats), for the log line and the benchmark."""

    dirty_bytes: int = 0  # bytes of the dirty section read while building the map
    map_records: int = 0  # keyed records put into the map
    map_seconds: float = 0.0
    bytes_read: int = 0  # bytes of segments rewritten
    bytes_written: int = 0
    records_removed: int = 0
    aborted_records_removed: int = 0  # records of aborted transactions dropped (part of records_removed)
    markers_removed: int = 0  # transaction markers dropped past their delete horizon
    batches_rewritten: int = 0
    seconds: float = 0.0
    map_bytes: int = 0  # size of the offset map's table

    def summary(self) -> str:
        mb = 1024 * 1024
        return (f"{self.dirty_bytes / mb:.1f} MB dirty mapped in {self.map_seconds:.2f}s "
                f"({self.map_records} keys, {self.map_records / max(self.map_seconds, 1e-9):.0f} keys/s); "
                f"{self.bytes_read / mb:.1f} MB cleaned to {self.bytes_written / mb:.1f} MB in "
                f"{self.seconds:.2f}s ({self.bytes_read / mb / max(self.seconds, 1e-9):.1f} MB/s), "
                f"{self.records_removed} records removed ({self.aborted_records_removed} aborted), "
                f"{self.markers_removed} markers removed; offset map {self.map_bytes / mb:.1f} MB")


@dataclass
class _Segment:
    """A segment of the cleaning plan: the object (for the swap check) and what the cleaner
    thread needs without touching it: path, size and offsets fixed at plan time (inactive
    segments do not change)."""

    segment: LogSegment
    base_offset: int
    next_offset: int
    size: int
    log_path: str
    index_entries: int
    time_index_entries: int


@dataclass
class _Plan:
    """One cleaning pass over one log, snapshotted on the event loop."""

    log: PartitionLog
    first_dirty: int
    first_uncleanable: int
    segments: list[_Segment]  # every segment below the first uncleanable offset (never the active one)
    producer_last_offsets: frozenset[int]  # last offset of each producer's last batch
    aborted: list[AbortedTxn]  # every .txnindex entry of the log, in marker order
    marker_epochs: dict[int, int]  # producer id -> epoch, for producers whose last entry is a marker
    now_ms: int
    stats: CleanerStats = field(default_factory=CleanerStats)


class _Aborted(Exception):
    """The cleaner is stopping (or the log went away): drop the pass, nothing was swapped."""


def crash_point(step: str) -> None:
    """Fault injection: exits the process at `step` when PYK_CLEANER_CRASH_AT names it."""
    if os.environ.get(CRASH_ENV) == step:
        log.warning("%s=%s: exiting at this step of a segment swap", CRASH_ENV, step)
        os._exit(_CRASH_EXIT_CODE)


class LogCleaner:
    """The cleaner threads of one LogManager (see module docstring).

    Lifecycle: `start(loop)` after the logs are loaded; `stop()` before LogManager.close(): it
    sets the stop flag and joins the threads (a pass in progress is dropped at its next batch;
    a swap already handed to the loop still runs there, or its `.cleaned` files are removed at
    the next start).  `clean_now(log)` runs one pass synchronously (tests, bench).
    """

    def __init__(self, manager: Any, config: CleanerConfig) -> None:
        self.manager = manager
        self.config = config
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards _in_progress and _checkpoints
        self._in_progress: set[TopicPartition] = set()
        self._checkpoints: dict[str, dict[TopicPartition, int]] = {}  # log dir -> first dirty offsets
        # Earliest future delete horizon written into each log by its last pass (in memory:
        # after a restart such tombstones wait for the next dirty-ratio pass).
        self._delete_horizons: dict[TopicPartition, int] = {}
        self.passes = 0
        self.last_stats: CleanerStats | None = None
        for log_dir in manager.log_dirs:
            try:
                self._checkpoints[log_dir] = read_offsets(os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT))
            except (CheckpointError, OSError) as exc:
                # Safe fallback: everything is dirty again, the next passes reclean it.
                log.warning("%s: unreadable %s (%s); recleaning from the log start", log_dir,
                            CLEANER_OFFSET_CHECKPOINT, exc)
                self._checkpoints[log_dir] = {}

    # Lifecycle --------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        for i in range(self.config.threads):
            thread = threading.Thread(target=self._run, name=f"pyk-log-cleaner-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def cleaning(self, tp: TopicPartition) -> bool:
        """A pass over this partition is in progress (its log must not be handed over now)."""
        with self._lock:
            return tp in self._in_progress

    def wake(self) -> None:
        """Look for work now instead of after log.cleaner.backoff.ms (a config change)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                plan = self._on_loop(self._grab_filthiest_log)
            except _Aborted:
                return
            if plan is None:
                self._wake.wait(self.config.backoff_ms / 1000)
                self._wake.clear()
                continue
            try:
                self._clean(plan, self._on_loop)
            except _Aborted:
                pass
            except Exception:
                log.exception("cleaning %s-%d failed; it stays dirty and is retried later", plan.log.topic,
                              plan.log.partition)
                self._stop.wait(self.config.backoff_ms / 1000)
            finally:
                with self._lock:
                    self._in_progress.discard((plan.log.topic, plan.log.partition))

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Runs fn on the event loop that owns the logs and returns its result (cleaner threads)."""
        assert self.loop is not None
        done: Future[T] = Future()

        def call() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn())
                except BaseException as exc:  # handed back to the cleaner thread
                    done.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(call)
        except RuntimeError:
            raise _Aborted() from None  # the loop is closed: the shard is stopping
        while True:
            try:
                return done.result(_LOOP_WAIT_S)
            except TimeoutError:
                if self._stop.is_set() and done.cancel():
                    raise _Aborted() from None

    # Choosing a log (on the event loop) -------------------------------------------------------
    def first_dirty_offset(self, plog: PartitionLog) -> int:
        """Where the dirty section starts: the checkpoint, within [log start, log end]
        (Kafka: a checkpoint outside it, e.g. after truncation or topic re-creation, is reset
        to the log start)."""
        with self._lock:
            offset = self._checkpoints.get(os.path.dirname(plog.directory), {}).get(
                (plog.topic, plog.partition), plog.log_start_offset)
        if offset < plog.log_start_offset or offset > plog.log_end_offset:
            return plog.log_start_offset
        return offset

    @staticmethod
    def _first_uncleanable_offset(plog: PartitionLog, first_dirty: int, now_ms: int) -> int:
        """The first offset no pass may touch: the active segment's base, the first dirty
        segment younger than min.compaction.lag.ms, and the last stable offset (an open
        transaction may still abort, so nothing from its first offset on is compacted).
        """
        upper = min(plog.last_stable_offset, plog.segments.active.base_offset)
        lag = plog.config.min_compaction_lag_ms
        if lag > 0:
            for segment in plog.segments.from_offset(first_dirty):
                if segment.base_offset >= upper:
                    break
                if segment.max_timestamp > now_ms - lag:
                    return segment.base_offset
        return upper

    def cleanable(self, plog: PartitionLog, now_ms: int) -> tuple[float, bool, int, int]:
        """(dirty ratio, must clean now, first dirty, first uncleanable) of a compacted log
        (Kafka LogCleanerManager.cleanableOffsets / LogToClean).  Must clean now: a dirty
        record older than max.compaction.lag.ms, or tombstones past their delete horizon."""
        first_dirty = self.first_dirty_offset(plog)
        first_uncleanable = self._first_uncleanable_offset(plog, first_dirty, now_ms)
        clean_bytes = dirty_bytes = 0
        oldest_dirty = None
        for segment in plog.segments:
            if segment.base_offset >= first_uncleanable:
                break
            if segment.next_offset <= first_dirty:
                clean_bytes += segment.size
            else:
                dirty_bytes += segment.size
                if oldest_dirty is None and segment.rolling_based_timestamp is not None:
                    oldest_dirty = segment.rolling_based_timestamp
        total = clean_bytes + dirty_bytes
        ratio = dirty_bytes / total if total else 0.0
        # KIP-354: a record may stay uncompacted at most max.compaction.lag.ms.
        overdue = (dirty_bytes > 0 and oldest_dirty is not None and oldest_dirty >= 0
                   and oldest_dirty < now_ms - plog.config.max_compaction_lag_ms)
        with self._lock:
            horizon = self._delete_horizons.get((plog.topic, plog.partition))
        overdue = overdue or (horizon is not None and horizon <= now_ms and clean_bytes > 0)
        return ratio, overdue, first_dirty, first_uncleanable

    def _grab_filthiest_log(self) -> _Plan | None:
        """The compacted log most in need of cleaning, marked in progress, as a plan; or None."""
        if self._stop.is_set():
            raise _Aborted()
        now_ms = int(time.time() * 1000)
        best: tuple[float, PartitionLog, int, int] | None = None
        compacted = 0
        for plog in self.manager.all_logs():
            if not plog.config.compact or plog.closed:
                continue
            compacted += 1
            with self._lock:
                if (plog.topic, plog.partition) in self._in_progress:
                    continue
            ratio, overdue, first_dirty, first_uncleanable = self.cleanable(plog, now_ms)
            if not overdue and (first_uncleanable <= first_dirty or ratio <= 0):
                continue
            if ratio > plog.config.min_cleanable_dirty_ratio or overdue:
                score = ratio + (1.0 if overdue else 0.0)
                if best is None or score > best[0]:
                    best = (score, plog, first_dirty, first_uncleanable)
        if best is None:
            log.debug("cleaner pass: nothing to clean among %d compacted logs", compacted)
            return None
        _, plog, first_dirty, first_uncleanable = best
        with self._lock:
            self._in_progress.add((plog.topic, plog.partition))
        return self.plan(plog, first_dirty, first_uncleanable, now_ms)

    @staticmethod
    def plan(plog: PartitionLog, first_dirty: int, first_uncleanable: int, now_ms: int) -> _Plan:
        """Snapshot of what a pass over `plog` needs (on the log's loop)."""
        segments = [_Segment(s, s.base_offset, s.next_offset, s.size, s.log_path, s.offset_index.entries,
                             s.time_index.entries)
                    for s in plog.segments if s.base_offset < first_uncleanable and s is not plog.segments.active]
        last = frozenset(e.last_offset for e in plog.producer_state.producers.values() if e.batches)
        # Every aborted transaction the log knows of, the active segment's included: a
        # transaction aborted by a marker past the cleaned range may have records inside it.
        aborted = [txn for s in plog.segments for txn in s.txn_index.entries]
        # A producer whose epoch a marker bumped has no batch of that epoch: its markers of
        # that epoch are what tells a restarted broker the epoch, which fences older instances
        # (Kafka keeps them too: Cleaner.cleanInto, "the last entry in the log is a marker").
        marker_epochs = {pid: e.epoch for pid, e in plog.producer_state.producers.items() if not e.batches}
        return _Plan(plog, first_dirty, first_uncleanable, segments, last, aborted, marker_epochs, now_ms)

    # One pass (cleaner thread) ----------------------------------------------------------------
    def clean_now(self, plog: PartitionLog, now_ms: int | None = None) -> CleanerStats | None:
        """One pass over `plog` in the calling thread, which must own the log (tests, bench);
        None when there is nothing to clean."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        _, overdue, first_dirty, first_uncleanable = self.cleanable(plog, now)
        if first_uncleanable <= first_dirty and not overdue:
            return None
        plan = self.plan(plog, first_dirty, first_uncleanable, now)
        self._clean(plan, lambda fn: fn())
        return plan.stats

    def _clean(self, plan: _Plan, on_loop: Callable[[Callable[[], Any]], Any]) -> None:
        plog, stats = plan.log, plan.stats
        started = time.monotonic()
        dirty = [s for s in plan.segments if s.next_offset > plan.first_dirty]
        # Each pass gets a map no larger than the dirty offsets can fill (each offset is at
        # most one key), within this thread's share of log.cleaner.dedupe.buffer.size.
        share = self.config.dedupe_buffer_size // max(self.config.threads, 1)
        needed = int((plan.first_uncleanable - plan.first_dirty) / self.config.io_buffer_load_factor) + 2
        memory = max(min(share, needed * _MAP_SLOT_BYTES), 2 * _MAP_SLOT_BYTES)
        offset_map = _native.OffsetMap(memory, self.config.io_buffer_load_factor)
        stats.map_bytes = offset_map.slots * _MAP_SLOT_BYTES
        end_offset = self._build_offset_map(plan, dirty, offset_map)
        stats.map_seconds = time.monotonic() - started
        # Records at or past end_offset are outside the map (a full map stopped early, or an
        # empty dirty section when only tombstones expire): the filter keeps them.
        offset_map.latest_offset = end_offset - 1
        to_clean = [s for s in plan.segments if s.base_offset < end_offset]
        if not to_clean:
            return
        tp = (plog.topic, plog.partition)
        with self._lock:
            self._delete_horizons.pop(tp, None)
        # One walk over the whole rewritten range, group after group in log order: a
        # transaction's records and its marker may fall into different groups.
        txns = _TransactionWalk(plan.aborted, to_clean[0].base_offset)
        for group in _group_by_size(to_clean, plog.config.segment_bytes, plog.config.segment_index_bytes):
            self._check_stop()
            self._clean_group(plan, group, offset_map, txns)
            _wait_quietly(plog.roll_flush)  # a swap is refused while rolled segments are being synced
            swapped = on_loop(functools.partial(plog.replace_segments, group[0].base_offset,
                                                [s.segment for s in group], on_step=crash_point))
            if not swapped:
                log.info("%s-%d changed while being cleaned; pass dropped", plog.topic, plog.partition)
                return
        self._set_checkpoint(plog, end_offset)
        stats.seconds = time.monotonic() - started
        self.passes += 1
        self.last_stats = stats
        log.info("cleaned %s-%d [%d, %d): %s; peak RSS %d MB", plog.topic, plog.partition, plan.first_dirty,
                 end_offset, stats.summary(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

    def _build_offset_map(self, plan: _Plan, dirty: list[_Segment], offset_map: _native.OffsetMap) -> int:
        """Fills the map from the dirty section; returns the end offset of what it covers."""
        stats = plan.stats
        txns = _TransactionWalk(plan.aborted, plan.first_dirty)
        for segment in dirty:
            for batch, info in self._read_batches(segment):
                if info.base_offset >= plan.first_uncleanable:
                    break
                if info.last_offset < plan.first_dirty:
                    continue
                if info.is_control:
                    txns.on_marker(info)
                elif txns.is_aborted(info):
                    # Kafka Cleaner.buildOffsetMapForSegment: an aborted record must not
                    # supersede the committed value of its key.  The map's range still
                    # covers the batch, so the pass (and the checkpoint) moves past it.
                    stats.dirty_bytes += len(batch)
                    offset_map.latest_offset = max(int(offset_map.latest_offset), info.last_offset)
                    continue
                put, complete = offset_map.put_batch(batch, plan.first_dirty)
                stats.map_records += put
                stats.dirty_bytes += len(batch)
                if not complete:
                    # Full: the pass covers up to the last record put, the rest stays dirty.
                    return int(offset_map.latest_offset) + 1
        return int(offset_map.latest_offset) + 1 if offset_map.latest_offset >= 0 else plan.first_dirty

    def _clean_group(self, plan: _Plan, group: list[_Segment], offset_map: _native.OffsetMap,
                     txns: _TransactionWalk) -> None:
        """Writes the cleaned copy of `group` as `<base>.*.cleaned` (and `<base>.txnindex.cleaned`
        when an ABORT marker with an index entry stays), flushed (Cleaner.cleanSegments)."""
        plog, stats = plan.log, plan.stats
        config = plog.config
        now = plan.now_ms
        new_horizon = now + config.delete_retention_ms
        pending = None  # earliest delete horizon still ahead in the output
        base = group[0].base_offset
        txn_index_cleaned = txn_index_path(plog.directory, base) + CLEANED_SUFFIX
        for path in (*segment_paths(plog.directory, base, CLEANED_SUFFIX), txn_index_cleaned):
            _unlink_quiet(path)  # a previous pass's output that was never swapped in
        aborted_by_marker = {txn.last_offset: txn for txn in plan.aborted}
        kept_aborts: list[AbortedTxn] = []  # index entries of the ABORT markers kept, in order
        out = LogSegment(plog.directory, base, index_interval_bytes=config.index_interval_bytes,
                         max_index_size=config.segment_index_bytes, active=True, created_ms=plan.now_ms,
                         file_suffix=CLEANED_SUFFIX)
        try:
            for segment in group:
                for batch, info in self._read_batches(segment):
                    stats.bytes_read += len(batch)
                    if info.is_control:
                        if not info.is_transactional:
                            pass  # not a transaction marker (none is written today): kept as is
                        elif (txns.on_marker(info) or info.last_offset > offset_map.latest_offset
                              or plan.marker_epochs.get(info.producer_id) == info.producer_epoch):
                            pass  # records of its transaction stay, past the map, or the epoch: kept
                        elif not info.attributes & ATTR_DELETE_HORIZON:
                            # Its transaction's records are all gone: the marker may go too, but
                            # only after delete.retention.ms, so a consumer that read those
                            # records before this pass still sees how the transaction ended
                            # (KIP-534's horizon, as for tombstones; Kafka does the same).
                            stamped = _with_delete_horizon(batch, info, new_horizon)
                            if stamped is not None:
                                stats.batches_rewritten += 1
                                batch, info = memoryview(stamped), _native.batch_info(stamped)
                        elif info.first_timestamp <= now:
                            stats.markers_removed += 1
                            continue
                        txn = aborted_by_marker.get(info.last_offset)
                        if txn is not None:
                            kept_aborts.append(txn)
                        kept, removed, rebuilt = info.records_count, 0, None
                    elif txns.is_aborted(info):
                        # Kafka Cleaner: records of aborted transactions are discarded whatever
                        # the map says; the batch header may stay (below) for the producer state.
                        kept, removed, rebuilt = 0, info.records_count, None
                        stats.aborted_records_removed += removed
                        if removed == 0:
                            removed = -1  # an already empty batch: kept only as a producer's last
                    else:
                        kept, removed, rebuilt = offset_map.filter_batch(batch, now, new_horizon)
                        if info.records_count == 0:
                            # A header an earlier pass kept for its producer: it goes once that
                            # producer has a later batch (Kafka BatchRetention.DELETE_EMPTY).
                            removed = -1
                    stats.records_removed += max(removed, 0)
                    if rebuilt is not None:
                        stats.batches_rewritten += 1
                        batch, info = memoryview(rebuilt), _native.batch_info(rebuilt)
                    elif kept == 0 and removed:
                        if info.producer_id >= 0 and info.last_offset in plan.producer_last_offsets:
                            if removed > 0:
                                batch = memoryview(_empty_batch(batch))  # keeps the producer's sequence state
                        else:
                            continue
                    if not info.is_control:
                        txns.on_kept(info)
                    if info.attributes & ATTR_DELETE_HORIZON and info.first_timestamp > now:
                        pending = info.first_timestamp if pending is None else min(pending, info.first_timestamp)
                    out.append(batch, info.last_offset, info.max_timestamp)
                    stats.bytes_written += len(batch)
                self._check_stop()
            out.on_become_inactive()
            out.flush()
        finally:
            out.close()
        if kept_aborts:
            # The entries of the old segments, verbatim (first offset, marker offset and the
            # LSO after the marker do not change with cleaning), for the ABORT markers kept.
            index = TransactionIndex(txn_index_cleaned, base)
            try:
                for txn in kept_aborts:
                    index.append(txn)
                index.flush()
            finally:
                index.close()
        if pending is not None:
            tp = (plog.topic, plog.partition)
            with self._lock:
                self._delete_horizons[tp] = min(pending, self._delete_horizons.get(tp, pending))
        crash_point("cleaned")

    def _read_batches(self, segment: _Segment) -> Iterator[tuple[memoryview, Any]]:
        """(batch, header) of each batch of a planned segment, read through an fd of our own in
        log.cleaner.io.buffer.size chunks (a larger batch is read whole)."""
        try:
            fd = os.open(segment.log_path, os.O_RDONLY)
        except FileNotFoundError:
            raise _Aborted() from None  # deleted since the plan: the swap would be refused anyway
        try:
            position, end, chunk_size = 0, segment.size, self.config.io_buffer_size
            while position + BATCH_HEADER_SIZE <= end:
                chunk = memoryview(os.pread(fd, min(chunk_size, end - position), position))
                at = 0
                while at + BATCH_HEADER_SIZE <= len(chunk):
                    size = READ_LENGTH.unpack_from(chunk, at)[0] + LOG_OVERHEAD
                    if size < BATCH_HEADER_SIZE:
                        raise ValueError(f"{segment.log_path}: batch of {size} bytes at position {position + at}")
                    if at + size > len(chunk):
                        break
                    batch = chunk[at: at + size]
                    yield batch, _native.batch_info(batch)
                    at += size
                if at == 0:
                    size = READ_LENGTH.unpack_from(chunk)[0] + LOG_OVERHEAD
                    if position + size > end:
                        raise ValueError(f"{segment.log_path}: batch at {position} runs past the segment end {end}")
                    batch = memoryview(os.pread(fd, size, position))
                    yield batch, _native.batch_info(batch)
                    at = size
                position += at
        finally:
            os.close(fd)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Aborted()

    # Checkpoint -------------------------------------------------------------------------------
    def _set_checkpoint(self, plog: PartitionLog, first_dirty: int) -> None:
        """Persists the new first dirty offset of `plog` (Kafka LogCleanerManager.doneCleaning);
        entries of partitions no longer in the log dir are dropped."""
        log_dir = os.path.dirname(plog.directory)
        with self._lock:
            offsets = self._checkpoints.setdefault(log_dir, {})
            offsets[(plog.topic, plog.partition)] = first_dirty
            present = {(p.topic, p.partition) for p in self.manager.all_logs()}
            for tp in [tp for tp in offsets if tp not in present]:
                del offsets[tp]
            write_offsets(os.path.join(log_dir, CLEANER_OFFSET_CHECKPOINT), offsets)


class _TransactionWalk:
    """The transactions seen by one walk over a log in offset order (Kafka
    CleanedTransactionMetadata): which data batches belong to an aborted transaction, and, for
    each marker, whether a batch of its transaction was kept in the output before it.

    Built from the log's .txnindex entries: an entry names its producer, first offset and
    marker offset, so a transactional batch of that producer lying between the first offset
    and the marker is aborted.  Entries whose marker is before `start` end before the walk and
    are ignored (else their producer's later, committed batches would look aborted).  Used by
    one cleaner thread for one pass; batches must be fed in offset order.
    """

    def __init__(self, aborted: list[AbortedTxn], start: int) -> None:
        # Popped from the end: the aborted transaction starting first is last.
        self._pending = sorted((t for t in aborted if t.last_offset >= start), key=lambda t: -t.first_offset)
        self._aborting: dict[int, AbortedTxn] = {}  # producer id -> its aborted transaction under way
        self._kept: set[int] = set()  # producers with a batch of their current transaction kept

    def _advance(self, offset: int) -> None:
        pending = self._pending
        while pending and pending[-1].first_offset <= offset:
            txn = pending.pop()
            self._aborting.setdefault(txn.producer_id, txn)

    def is_aborted(self, info: Any) -> bool:
        """True for a data batch of an aborted transaction."""
        self._advance(info.last_offset)
        return bool(info.is_transactional) and info.producer_id in self._aborting

    def on_kept(self, info: Any) -> None:
        """A data batch goes to the output (whole, filtered or as an empty header)."""
        if info.is_transactional:
            self._kept.add(info.producer_id)

    def on_marker(self, info: Any) -> bool:
        """The producer's transaction ends at this marker; True when a batch of it was kept, so
        the marker must stay (a read_committed reader, and the producer state rebuilt at
        start-up, need the marker of every transaction that still has batches)."""
        self._advance(info.last_offset)
        self._aborting.pop(info.producer_id, None)
        if info.producer_id in self._kept:
            self._kept.discard(info.producer_id)
            return True
        return False


def _with_delete_horizon(batch: memoryview, info: Any, horizon_ms: int) -> bytes | None:
    """A copy of the uncompressed control batch `batch` whose baseTimestamp is the delete
    horizon (attribute bit 6, KIP-534), its records' timestamp deltas re-based so their
    timestamps do not change (what OffsetMap.filter_batch does for tombstones); None for a
    compressed batch (the broker never writes one), which is then kept as is."""
    if info.compression:
        return None
    rebase = info.first_timestamp - horizon_ms
    body = bytearray()
    at = BATCH_HEADER_SIZE
    for _ in range(info.records_count):
        #   length: varint  attributes: int8  timestampDelta: varlong  (offsetDelta ... as is)
        length, at = _native.decode_varint(batch, at)
        end = at + length
        delta, after = _native.decode_varint(batch, at + 1)
        record = bytes(batch[at: at + 1]) + _native.encode_varint(delta + rebase) + bytes(batch[after:end])
        body += _native.encode_varint(len(record)) + record
        at = end
    out = bytearray(BATCH_HEADER_SIZE) + body
    header = read_header(batch)
    write_header(out, header._replace(attributes=header.attributes | ATTR_DELETE_HORIZON, base_timestamp=horizon_ms))
    return bytes(out)


def _group_by_size(segments: list[_Segment], max_size: int, max_index_size: int) -> list[list[_Segment]]:
    """Consecutive segments merged into one cleaned segment while their combined size fits
    segment.bytes, their indexes fit segment.index.bytes and their offsets a 32-bit relative
    offset (Kafka Cleaner.groupSegmentsBySize; sizes before cleaning, so always safe)."""
    groups: list[list[_Segment]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        size, index, time_index = segments[i].size, segments[i].index_entries, segments[i].time_index_entries
        i += 1
        while i < len(segments):
            nxt = segments[i]
            if (size + nxt.size > max_size
                    or (index + nxt.index_entries) * _OFFSET_INDEX_ENTRY > max_index_size
                    or (time_index + nxt.time_index_entries + 1) * _TIME_INDEX_ENTRY > max_index_size
                    or nxt.next_offset - 1 - group[0].base_offset > _INT32_MAX):
                break
            group.append(nxt)
            size += nxt.size
            index += nxt.index_entries
            time_index += nxt.time_index_entries
            i += 1
        groups.append(group)
    return groups


def _empty_batch(batch: memoryview) -> bytes:
    """The header of `batch` with no records (Kafka DefaultRecordBatch.writeEmptyHeader): base
    and last offset, producer id, epoch and base sequence stay, so the producer's state does."""
    out = bytearray(BATCH_HEADER_SIZE)
    header = read_header(batch)
    # No records: nothing to decompress, so no codec either.
    write_header(out, header._replace(attributes=header.attributes & ~ATTR_COMPRESSION_MASK, records_count=0))
    return bytes(out)


def _wait_quietly(future: Future[None] | None) -> None:
    """Waits up to 10 s for `future`; its outcome is the owner's business (PartitionLog.flush_if_due)."""
    if future is not None:
        try:
            future.result(timeout=10)
        except Exception:  # noqa: BLE001 - errors surface on the log's loop, timeouts refuse the swap
            pass


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
