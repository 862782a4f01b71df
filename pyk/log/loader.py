"""LogLoader: opens a partition directory at start-up and makes it consistent.

Owns start-up recovery of one partition (Kafka LogLoader.java):

 1. Leftovers of interrupted operations are removed: `*.tmp` (an atomic write that did not
    finish), `*.deleted`, and index or snapshot files whose `.log` is gone.  An interrupted
    segment swap of the log cleaner is completed or rolled back (Kafka LogLoader's rules; the
    writer's side is PartitionLog.replace_segments):
      * `*.cleaned` files are deleted: the cleaner had not finished writing them, and the
        segments they were to replace are all still live;
      * a `.swap` file at or above the lowest `.cleaned` base offset is deleted too: its set
        was only half renamed (the .log renamed, an index still `.cleaned`), so again the old
        segments are untouched;
      * every other `.swap` set was complete and flushed before its rename: the segment files
        whose base offset lies in [lowest swap base, highest swap next offset) are the ones it
        replaces (some may already be gone) and are deleted, then the `.swap` files are
        renamed live.
 2. Every `<base>.log` becomes a LogSegment.  Which segments are CRC-scanned (`recover()`):
      * after an unclean shutdown (no clean-shutdown marker): the segment holding the recovery
        point and every later one; the recovery point is the log end offset at the last flush,
        so everything before it is known to be on disk intact;
      * always: a segment whose .index/.timeindex is missing or fails its sanity check (wrong
        size, not monotonic, pointing past the end of the .log), whose .txnindex is damaged, or
        whose tail walk does not end exactly at the end of the file.
    If recovery truncates a segment (torn or corrupt tail), every later segment is deleted: data
    after a hole is not a continuation of this log, and it was never acknowledged as such (an
    acknowledged batch was os.write-n before the ack, so a process kill keeps it; only a power
    loss without flush can tear the tail, which flush.messages / flush.ms bound).
 3. The last segment becomes the active one (index files preallocated again); an empty
    directory gets one empty segment at the log start offset.
 4. Offsets: log end offset = the active segment's next offset; log start offset = max(checkpoint,
    first segment's base), clamped to the log end; recovery point = min(checkpoint, log end).
 5. The leader epoch cache drops entries past the log end or before the log start; the producer
    state is rebuilt (snapshot + header replay, see producer_state.py).  When segments were
    recovered, the .txnindex of the first recovered one and of every later one is emptied and
    rebuilt by that replay from the markers (Kafka LogSegment.recover rebuilds it the same way,
    with the producer state as of the segment's base offset): a .txnindex is not CRC-protected,
    and after a torn tail it may name markers that are gone.  The .txnindex of segments before
    them is trusted like their other indexes.

Runs once per partition, on the event loop of the process that will own it, before serving.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from pyk.log.config import LogConfig
from pyk.log.epoch_cache import LeaderEpochFileCache
from pyk.log.files import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LEADER_EPOCH_CHECKPOINT,
    LOG_SUFFIX,
    SNAPSHOT_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    TXN_INDEX_SUFFIX,
    fsync_dir,
    parse_offset_file,
)
from pyk.log.index import CorruptIndexError
from pyk.log.producer_state import ProducerStateManager
from pyk.log.record_batch import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    READ_LAST_OFFSET_DELTA,
    READ_OFFSET_LENGTH,
)
from pyk.log.segment import LogSegment
from pyk.log.segments import LogSegments

log = logging.getLogger("pyk.log")


@dataclass
class LoadedLog:
    """What LogLoader hands to PartitionLog: consistent segments and the offsets over them."""

    segments: LogSegments
    log_start_offset: int
    log_end_offset: int
    recovery_point: int
    epoch_cache: LeaderEpochFileCache
    producer_state: ProducerStateManager
    recovered_segments: int  # how many segments were CRC-scanned (for the start-up log line)
    truncated_bytes: int  # bytes cut from torn tails


class LogLoader:
    """Loads one partition directory (see module docstring for the steps and their reasons)."""

    def __init__(self, directory: str, config: LogConfig, recovery_point: int, log_start_offset: int,
                 had_clean_shutdown: bool, now_ms: int | None = None) -> None:
        self.directory = directory
        self.config = config
        self.recovery_point = recovery_point
        self.log_start_offset = log_start_offset
        self.had_clean_shutdown = had_clean_shutdown
        self.now_ms = int(time.time() * 1000) if now_ms is None else now_ms

    def new_segment(self, base_offset: int, active: bool) -> LogSegment:
        return LogSegment(self.directory, base_offset, index_interval_bytes=self.config.index_interval_bytes,
                          max_index_size=self.config.segment_index_bytes, active=active, created_ms=self.now_ms,
                          preallocate_bytes=self.config.segment_bytes if (active and self.config.preallocate) else 0)

    def load(self) -> LoadedLog:
        bases = self._clean_directory()
        segments = LogSegments()
        # Every segment is opened inactive (trimmed indexes); only the last one is made active
        # once we know which segment is last after any truncation below.
        recovered = 0
        truncated_total = 0
        rebuild_txn_index_from: int | None = None  # base of the first recovered segment
        # Segments at or after this base are CRC-scanned after an unclean shutdown.
        recover_from = None
        if not self.had_clean_shutdown:
            floor = [b for b in bases if b <= self.recovery_point]
            recover_from = floor[-1] if floor else (bases[0] if bases else 0)
        for i, base in enumerate(bases):
            segment = self.new_segment(base, active=False)
            # Unflushed data (at/after the recovery point's segment) may be torn only if the
            # machine lost power; after a process kill it is intact, but a CRC scan is the only
            # way to know which case we are in, so Kafka (and pyk) always scan it.
            must_recover = recover_from is not None and base >= recover_from
            reason = "unclean shutdown" if must_recover else ""
            if not must_recover:
                # Trusted data, but its indexes are derived files: check them cheaply and
                # rebuild from the .log if they do not describe it.
                reason = self._needs_rebuild(segment)
                must_recover = bool(reason)
            if must_recover:
                truncated = segment.recover()
                recovered += 1
                if rebuild_txn_index_from is None:
                    rebuild_txn_index_from = base
                if truncated:
                    log.warning("%s: %s: truncated %d bytes of torn or corrupt tail at position %d (%s)",
                                self.directory, os.path.basename(segment.log_path), truncated, segment.size, reason)
                    truncated_total += truncated
                    segments.add(segment)
                    for later in bases[i + 1:]:
                        # Data after a hole cannot belong to this log (see module docstring).
                        log.warning("%s: deleting segment %d after the truncated one", self.directory, later)
                        self.new_segment(later, active=False).delete_now()
                    break
            segments.add(segment)
        if not segments:
            # A new (or fully deleted) log: its first segment starts where consumers may start.
            segments.add(self.new_segment(self.log_start_offset, active=True))
        else:
            segments.active.make_active()
        # The log end offset is derived from data, never from a checkpoint: whatever survived
        # recovery is the log.
        log_end_offset = segments.active.next_offset
        # The checkpointed log start can be below the first segment (retention removed whole
        # segments after the checkpoint) or above the log end (the tail was truncated after a
        # DeleteRecords up to the high watermark); both are corrected here.
        log_start_offset = min(max(self.log_start_offset, segments.first.base_offset), log_end_offset)
        recovery_point = min(self.recovery_point, log_end_offset)
        epoch_cache = LeaderEpochFileCache(os.path.join(self.directory, LEADER_EPOCH_CHECKPOINT))
        epoch_cache.truncate_from_end(log_end_offset)
        epoch_cache.truncate_from_start(log_start_offset)
        if rebuild_txn_index_from is not None:
            for segment in segments.from_offset(rebuild_txn_index_from):
                segment.txn_index.reset()
        producer_state = ProducerStateManager(self.directory)
        producer_state.load(segments, log_start_offset, log_end_offset, rebuild_txn_index_from)
        return LoadedLog(segments, log_start_offset, log_end_offset, recovery_point, epoch_cache, producer_state,
                         recovered, truncated_total)

    def _needs_rebuild(self, segment: LogSegment) -> str:
        """Why a segment's indexes cannot be trusted, or "" if they can."""
        # A missing index file was just created empty by the segment; for a non-empty .log
        # that is not "no entries needed" but "entries lost".
        if segment.size and not (segment.offset_index.existed and segment.time_index.existed):
            return "index file missing"
        try:
            segment.sanity_check()
        except CorruptIndexError as exc:
            log.warning("rebuilding indexes: %s", exc)
            return "corrupt index"
        if not segment.load_tail():
            return "index does not match the log"
        return ""

    def _complete_swaps(self) -> None:
        """Completes or rolls back an interrupted cleaner swap (step 1, see module docstring)."""
        names = os.listdir(self.directory)
        cleaned = [n for n in names if n.endswith(CLEANED_SUFFIX)]
        swaps = [n for n in names if n.endswith(SWAP_SUFFIX)]
        if not cleaned and not swaps:
            return
        min_cleaned = min((b for n in cleaned if (b := _base_of(n[: -len(CLEANED_SUFFIX)])) is not None),
                          default=None)
        for name in cleaned:
            log.info("%s: removing unfinished cleaner output %s", self.directory, name)
            os.unlink(os.path.join(self.directory, name))
        valid = []
        for name in swaps:
            base = _base_of(name[: -len(SWAP_SUFFIX)])
            if base is None or (min_cleaned is not None and base >= min_cleaned):
                log.info("%s: removing half-renamed cleaner output %s", self.directory, name)
                os.unlink(os.path.join(self.directory, name))
            else:
                valid.append(name)
        logs = [n for n in valid if n.endswith(LOG_SUFFIX + SWAP_SUFFIX)]
        if not logs:
            for name in valid:  # indexes without their .log: nothing to swap in
                os.unlink(os.path.join(self.directory, name))
            return
        low, high = None, None
        for name in logs:
            base = parse_offset_file(name[: -len(SWAP_SUFFIX)], LOG_SUFFIX)
            assert base is not None
            next_offset = _next_offset(os.path.join(self.directory, name), base)
            low = base if low is None else min(low, base)
            high = next_offset if high is None else max(high, next_offset)
        assert low is not None and high is not None
        for name in os.listdir(self.directory):
            if name.endswith(SWAP_SUFFIX):
                continue
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
                base = parse_offset_file(name, suffix)
                if base is not None and low <= base < high:
                    log.info("%s: deleting %s, replaced by an interrupted cleaner swap", self.directory, name)
                    os.unlink(os.path.join(self.directory, name))
        for name in valid:
            log.info("%s: completing interrupted cleaner swap of %s", self.directory, name)
            os.rename(os.path.join(self.directory, name), os.path.join(self.directory, name[: -len(SWAP_SUFFIX)]))
        fsync_dir(self.directory)

    def _clean_directory(self) -> list[int]:
        """Removes leftovers (step 1) and returns the sorted base offsets of the .log files."""
        self._complete_swaps()
        names = os.listdir(self.directory)
        # The .log files define the segments; every other per-segment file is derived from
        # them or describes them, so it goes when its .log is gone.
        bases = sorted(b for b in (parse_offset_file(n, LOG_SUFFIX) for n in names) if b is not None)
        present = set(bases)
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith((TMP_SUFFIX, DELETED_SUFFIX)):
                log.info("%s: removing leftover %s", self.directory, name)
                os.unlink(path)
                continue
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
                base = parse_offset_file(name, suffix)
                if base is not None and base not in present:
                    log.info("%s: removing orphan index %s", self.directory, name)
                    os.unlink(path)
            snap = parse_offset_file(name, SNAPSHOT_SUFFIX)
            if snap is not None and bases and snap < bases[0]:
                os.unlink(path)  # describes data that retention already removed
        return bases


def _base_of(name: str) -> int | None:
    """Base offset of a segment file name without its .cleaned/.swap suffix (the cleaner's
    output may include a .txnindex)."""
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
        base = parse_offset_file(name, suffix)
        if base is not None:
            return base
    return None


def _next_offset(path: str, base_offset: int) -> int:
    """One past the last offset of the batches in a segment file (headers only, like
    LogSegment.iter_headers); base_offset for an empty file."""
    next_offset = base_offset
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position + BATCH_HEADER_SIZE <= size:
            header = os.pread(fd, BATCH_HEADER_SIZE, position)
            base, length = READ_OFFSET_LENGTH.unpack_from(header)
            if length < MIN_BATCH_LENGTH or position + length + LOG_OVERHEAD > size:
                break
            next_offset = base + READ_LAST_OFFSET_DELTA.unpack_from(header)[0] + 1
            position += length + LOG_OVERHEAD
    finally:
        os.close(fd)
    return next_offset
