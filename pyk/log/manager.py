"""LogManager: every partition log of this process, across the configured log.dirs.

Owns (Kafka LogManager.scala):
  * the log directories: each holds `<topic>-<partition>/` partition directories plus
        recovery-point-offset-checkpoint   topic partition offset   (flushed-up-to offsets)
        log-start-offset-checkpoint        topic partition offset   (DeleteRecords/retention)
        replication-offset-checkpoint      topic partition offset   (high watermarks, for a cluster's
                                                                     replicas: a restarted one starts
                                                                     from what was committed)
        meta.properties                    node.id / cluster.id / version (KRaft-style)
        .kafka_cleanshutdown               present only between a clean close() and the next load()
  * start-up: load() opens every partition directory with LogLoader.  Without the clean-shutdown
    marker, segments after each partition's recovery point are CRC-scanned and torn tails cut.
    The marker is removed once everything is loaded, so a crash from then on is seen as unclean.
  * create/delete of partition logs; deletion renames the directory to
    `<topic>-<partition>.<32 hex>-delete` first (atomic: a crash never resurrects the partition;
    load() finishes the removal of such directories).  As for a deleted segment, the removal is
    asynchronous: the log keeps its fds open for file.delete.delay.ms so in-flight sendfile()s
    complete, then checkpoint() / close() close them and the directory is removed on the
    background deleter.
  * retention: cleanup_logs() runs one retention pass over every log (PartitionLog.
    delete_old_segments; the broker calls it every log.retention.check.interval.ms).
  * checkpoint(): rewrites the offset checkpoints of every dir (atomically) and the leader-epoch
    files left stale by log start moves; checkpoint_high_watermarks(): the high watermarks alone
    (every replica.high.watermark.checkpoint.interval.ms in a cluster); close(): flushes and
    closes every log, writes the checkpoints, then the clean-shutdown marker.
  * placement: a new partition goes to the log dir holding the fewest partitions.
  * the log cleaner (compaction of cleanup.policy=compact logs, pyk.log.cleaner), started once
    the logs are loaded and stopped before they close.
  * the storage I/O threads (`io`, a pyk.log.io.LogIO): made with the manager, handed to every
    log, stopped by close() once every log is closed.

Threading: single-threaded; one event loop owns this manager and all its logs.  A later step runs
one such process per core, each with a LogManager over its own group of partitions.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import time
import uuid
from asyncio import AbstractEventLoop
from collections.abc import Mapping
from dataclasses import dataclass

from pyk.errors import ErrorCode, KafkaError
from pyk.log.checkpoint import CheckpointError, read_offsets, write_offsets
from pyk.log.cleaner import CleanerConfig, LogCleaner
from pyk.log.config import LogConfig
from pyk.log.files import (
    CLEAN_SHUTDOWN_MARKER,
    HIGH_WATERMARK_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT,
    META_PROPERTIES,
    RECOVERY_POINT_CHECKPOINT,
    delete_dir_name,
    fsync_dir,
    is_delete_dir,
    parse_partition_dir,
    partition_dir_name,
    write_atomic,
)
from pyk.log.io import LogIO
from pyk.log.partition_log import PartitionLog

log = logging.getLogger("pyk.log")

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Handover:
    """A partition directory released by one shard for another to open (LogManager.release):
    the log dir holding it, its path, and the offsets its clean close left."""

    log_dir: str
    directory: str
    recovery_point: int
    log_start_offset: int


class LogManager:
    """All partition logs of one process (see module docstring for files and lifecycle)."""

    def __init__(self, log_dirs: list[str], defaults: LogConfig) -> None:
        if not log_dirs:
            raise ValueError("at least one log dir is required")
        self.log_dirs = [os.path.abspath(d) for d in log_dirs]
        self.defaults = defaults
        self.logs: dict[TopicPartition, PartitionLog] = {}
        self._dir_of: dict[TopicPartition, str] = {}  # partition -> the log dir holding it
        self._topic_configs: dict[str, LogConfig] = {}
        self._deleted: list[tuple[int, PartitionLog, str]] = []  # (release deadline ms, log, renamed dir)
        self._held_fds: list[tuple[int, list[int]]] = []  # (close deadline ms, .log fds of released logs)
        # The replication-offset-checkpoints read by load(), for the replicas' first high watermark.
        self._loaded_high_watermarks: dict[TopicPartition, int] = {}
        self.cleaner: LogCleaner | None = None  # compaction threads, between start_cleaner and stop_cleaner
        self.io = LogIO()  # writeback, roll flush, group commit and file deletion threads
        self.loaded = False
        for d in self.log_dirs:
            os.makedirs(d, exist_ok=True)

    # Start-up -----------------------------------------------------------------------------------
    def load(self, topic_configs: Mapping[str, LogConfig] | None = None) -> None:
        """Opens every partition directory of every log dir (recovering as needed).

        `topic_configs` gives the config of topics with overrides (others use the defaults).
        Leftover `-delete` directories are removed.  The clean-shutdown marker of each dir is
        removed only after all its partitions loaded.
        """
        if topic_configs:
            self._topic_configs.update(topic_configs)
        now_ms = int(time.time() * 1000)
        for log_dir in self.log_dirs:
            # The marker is per log dir (Kafka LogManager): each dir was closed cleanly or not.
            marker = os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER)
            clean = os.path.exists(marker)
            loaded_here = 0
            recovery_points = self._read_checkpoint(log_dir, RECOVERY_POINT_CHECKPOINT)
            start_offsets = self._read_checkpoint(log_dir, LOG_START_OFFSET_CHECKPOINT)
            high_watermarks = self._read_checkpoint(log_dir, HIGH_WATERMARK_CHECKPOINT)
            for name in sorted(os.listdir(log_dir)):
                path = os.path.join(log_dir, name)
                if not os.path.isdir(path):
                    continue
                if is_delete_dir(name):
                    log.info("%s: finishing deletion of %s", log_dir, name)
                    shutil.rmtree(path, ignore_errors=True)
                    continue
                tp = parse_partition_dir(name)
                if tp is None:
                    continue
                if tp in self.logs:
                    raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR,
                                     f"{tp[0]}-{tp[1]} exists in both {self._dir_of[tp]} and {log_dir}")
                plog = PartitionLog.load(path, tp[0], tp[1], self.config_for(tp[0]), io=self.io,
                                         recovery_point=recovery_points.get(tp, 0),
                                         log_start_offset=start_offsets.get(tp, 0),
                                         had_clean_shutdown=clean, now_ms=now_ms)
                self._register(tp, log_dir, plog)
                if tp in high_watermarks:
                    self._loaded_high_watermarks[tp] = high_watermarks[tp]
                loaded_here += 1
            if clean:
                # From now on the logs change: a crash must be seen as unclean at the next start.
                os.unlink(marker)
                fsync_dir(log_dir)
            elif loaded_here:
                log.info("%s: no clean-shutdown marker, logs after their recovery points were checked", log_dir)
        self.loaded = True

    def _read_checkpoint(self, log_dir: str, name: str) -> dict[TopicPartition, int]:
        try:
            return read_offsets(os.path.join(log_dir, name))
        except (CheckpointError, OSError) as exc:
            # Safe fallback: recovery point 0 re-checks everything; log start falls back to the
            # first segment.  Logged loudly because DeleteRecords progress may be lost.
            log.warning("%s: unreadable %s (%s); using safe defaults", log_dir, name, exc)
            return {}

    def _register(self, tp: TopicPartition, log_dir: str, plog: PartitionLog) -> None:
        self.logs[tp] = plog
        self._dir_of[tp] = log_dir
        plog.on_log_start_offset_change = self._on_log_start_change

    def checkpointed_high_watermark(self, topic: str, partition: int) -> int:
        """The high watermark the partition's log dir recorded before this start (0 when it
        has none: the log start then, as Kafka's Partition takes it)."""
        return self._loaded_high_watermarks.pop((topic, partition), 0)

    def config_for(self, topic: str) -> LogConfig:
        return self._topic_configs.get(topic, self.defaults)

    # meta.properties ------------------------------------------------------------------------------
    def ensure_meta_properties(self, node_id: int, cluster_id: str | None = None) -> str:
        """Checks or writes meta.properties in every log dir; returns the cluster id.

        An existing file must agree on node.id (and cluster.id when given): a mismatch means
        the dir belongs to another broker or cluster, so start-up fails with
        KafkaError(INCONSISTENT_CLUSTER_ID) rather than mixing logs.  Without a cluster id
        anywhere a new one is generated (Kafka's 22-character URL-safe base64 UUID).
        """
        found: dict[str, dict[str, str]] = {}
        for log_dir in self.log_dirs:
            path = os.path.join(log_dir, META_PROPERTIES)
            if os.path.exists(path):
                found[log_dir] = _read_properties(path)
        ids = {p.get("cluster.id") for p in found.values()} - {None}
        if cluster_id is not None:
            ids.add(cluster_id)
        if len(ids) > 1:
            raise KafkaError(ErrorCode.INCONSISTENT_CLUSTER_ID, f"log dirs disagree on cluster.id: {sorted(ids)}")  # type: ignore[type-var]
        for log_dir, props in found.items():
            if props.get("node.id", str(node_id)) != str(node_id):
                raise KafkaError(ErrorCode.INCONSISTENT_CLUSTER_ID,
                                 f"{log_dir}/{META_PROPERTIES} has node.id {props.get('node.id')}, expected {node_id}")
        chosen = ids.pop() if ids else base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        for log_dir in self.log_dirs:
            if log_dir in found:
                continue
            directory_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            text = (f"#\n#{time.strftime('%a %b %d %H:%M:%S %Z %Y')}\ncluster.id={chosen}\n"
                    f"directory.id={directory_id}\nnode.id={node_id}\nversion=1\n")
            write_atomic(os.path.join(log_dir, META_PROPERTIES), text.encode())
        return chosen  # type: ignore[return-value]

    # Partitions ---------------------------------------------------------------------------------
    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((topic, partition))

    def all_logs(self) -> list[PartitionLog]:
        return list(self.logs.values())

    def create(self, topic: str, partition: int, config: LogConfig | None = None) -> PartitionLog:
        """Creates the partition's log (Kafka getOrCreateLog: an existing log is returned as is,
        with `config` applied).  The directory goes to the log dir with the fewest partitions."""
        tp = (topic, partition)
        if config is not None:
            self._topic_configs[topic] = config
        existing = self.logs.get(tp)
        if existing is not None:
            if config is not None:
                existing.update_config(config)
            return existing
        log_dir = self._least_loaded_dir()
        path = os.path.join(log_dir, partition_dir_name(topic, partition))
        plog = PartitionLog.load(path, topic, partition, self.config_for(topic), io=self.io)
        fsync_dir(log_dir)
        self._register(tp, log_dir, plog)
        return plog

    def _least_loaded_dir(self) -> str:
        # Kafka's default placement: fewest partitions, ties to the first configured dir.
        counts = {d: 0 for d in self.log_dirs}
        for d in self._dir_of.values():
            counts[d] += 1
        return min(self.log_dirs, key=lambda d: (counts[d], self.log_dirs.index(d)))

    def delete(self, topic: str, partition: int) -> None:
        """Removes the partition: rename to `<dir>.<hex>-delete` (atomic); the files go after
        file.delete.delay.ms (see module docstring).  Unknown partitions are ignored (deletion
        is idempotent)."""
        tp = (topic, partition)
        plog = self.logs.pop(tp, None)
        log_dir = self._dir_of.pop(tp, None)
        if plog is None or log_dir is None:
            return
        # Rename first: after this single atomic step a restart no longer sees the partition,
        # whatever happens to the removal below.
        old = plog.directory
        new = os.path.join(log_dir, delete_dir_name(topic, partition))
        os.rename(old, new)
        fsync_dir(log_dir)
        plog.close_for_delete()
        self._deleted.append((int(time.time() * 1000) + plog.config.file_delete_delay_ms, plog, new))
        if not any(t == topic for t, _ in self.logs):
            self._topic_configs.pop(topic, None)

    # Handover between shards (pyk.server.balancer) -----------------------------------------------
    def stop_serving(self, topic: str, partition: int) -> PartitionLog | None:
        """Handover, step 1: the partition's log leaves the lookup (get() no longer finds it,
        so requests for it are answered NOT_LEADER_OR_FOLLOWER); it stays open for `release`.
        Refused while the cleaner compacts it (its swap would land in a directory that moved);
        the cleaner picks logs on the same event loop, so none is picked from here on."""
        if self.cleaner is not None and self.cleaner.cleaning((topic, partition)):
            raise KafkaError(ErrorCode.REASSIGNMENT_IN_PROGRESS,
                             f"{topic}-{partition} is being compacted; it can move once the pass ends")
        return self.logs.pop((topic, partition), None)

    def release(self, plog: PartitionLog) -> Handover:
        """Handover, step 2: closes the log cleanly (flushed, producer state and leader epochs
        written) for another shard to open its directory, and drops it from this manager's
        checkpoints; its .log fds close after file.delete.delay.ms (in-flight sends).  Returns
        where the directory is and what its next owner needs to open it without a recovery
        scan.  The caller waited for the group commit of the log since `stop_serving`."""
        log_dir = self._dir_of.pop((plog.topic, plog.partition))
        fds = plog.close_for_handover()
        self._held_fds.append((int(time.time() * 1000) + plog.config.file_delete_delay_ms, fds))
        self._write_checkpoints(log_dir)
        return Handover(log_dir, plog.directory, plog.log_end_offset, plog.log_start_offset)

    def adopt(self, topic: str, partition: int, log_dir: str, handover: Handover,
              config: LogConfig | None = None) -> PartitionLog:
        """Opens a partition directory another shard released into `log_dir` (one of ours),
        trusting its recovery point (it was closed cleanly), and records it in our checkpoints
        at once so a crash from here on recovers it from that point."""
        tp = (topic, partition)
        if config is not None:
            self._topic_configs[topic] = config
        existing = self.logs.get(tp)
        if existing is not None:  # this shard restarted meanwhile and loaded it already
            return existing
        path = os.path.join(log_dir, partition_dir_name(topic, partition))
        plog = PartitionLog.load(path, topic, partition, self.config_for(topic), io=self.io,
                                 recovery_point=handover.recovery_point, log_start_offset=handover.log_start_offset,
                                 had_clean_shutdown=True)
        self._register(tp, log_dir, plog)
        self._write_checkpoints(log_dir)
        return plog

    def update_config(self, topic: str, config: LogConfig) -> None:
        """Applies new topic settings to every partition of the topic (and to later creates)."""
        self._topic_configs[topic] = config
        for (t, _), plog in self.logs.items():
            if t == topic:
                plog.update_config(config)
        if config.compact and self.cleaner is not None:
            self.cleaner.wake()  # e.g. cleanup.policy became compact: look at it now

    # Log cleaner ---------------------------------------------------------------------------------
    def start_cleaner(self, config: CleanerConfig, loop: AbstractEventLoop) -> None:
        """Starts compaction of the compacted logs (log.cleaner.enable) once they are loaded;
        `loop` is the event loop that owns these logs (swaps run there)."""
        if config.enable and self.cleaner is None:
            self.cleaner = LogCleaner(self, config)
            self.cleaner.start(loop)

    def stop_cleaner(self) -> None:
        """Stops the cleaner threads (a pass in progress is dropped, its swap never half done)."""
        if self.cleaner is not None:
            self.cleaner.stop()
            self.cleaner = None

    # Retention --------------------------------------------------------------------------------
    def cleanup_logs(self, now_ms: int | None = None) -> int:
        """One retention pass over every log (Kafka LogManager.cleanupLogs); returns the number of
        segments deleted.  A log that fails (an I/O error renaming its files) is logged and
        retried at the next pass; the others still run."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        total = 0
        for plog in list(self.logs.values()):
            try:
                total += plog.delete_old_segments(now)
            except OSError:
                log.exception("%s: retention pass failed; retrying at the next one", plog.directory)
        return total

    # Flush, checkpoints, shutdown ---------------------------------------------------------------
    def flush_all(self) -> None:
        for plog in self.logs.values():
            plog.flush()

    def checkpoint(self) -> None:
        """Writes the offset checkpoints of every log dir (log start offsets moved by retention
        become durable here) and the stale leader-epoch files, and releases expired deleted logs."""
        for log_dir in self.log_dirs:
            self._write_checkpoints(log_dir)
        for plog in self.logs.values():
            plog.epoch_cache.write_if_dirty()
        self.release_expired(int(time.time() * 1000))

    def _write_checkpoints(self, log_dir: str) -> None:
        # Each dir's checkpoints list exactly the partitions stored in that dir (Kafka's layout),
        # so a dir moved to another broker carries its own offsets.
        mine = {tp: plog for tp, plog in self.logs.items() if self._dir_of[tp] == log_dir}
        write_offsets(os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT),
                      {tp: plog.recovery_point for tp, plog in mine.items()})
        write_offsets(os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT),
                      {tp: plog.log_start_offset for tp, plog in mine.items()})
        self._write_high_watermarks(log_dir)

    def checkpoint_high_watermarks(self) -> None:
        """Writes the high watermark of every log to its dir's replication-offset-checkpoint
        (Kafka's checkpointHighWatermarks; a restarted replica starts from it)."""
        for log_dir in self.log_dirs:
            self._write_high_watermarks(log_dir)

    def _write_high_watermarks(self, log_dir: str) -> None:
        write_offsets(os.path.join(log_dir, HIGH_WATERMARK_CHECKPOINT),
                      {tp: plog.high_watermark for tp, plog in self.logs.items() if self._dir_of[tp] == log_dir})

    def _on_log_start_change(self, plog: PartitionLog) -> None:
        # DeleteRecords must survive a restart: persist the moved log start offset right away.
        tp = (plog.topic, plog.partition)
        log_dir = self._dir_of.get(tp)
        if log_dir is None:
            return
        mine = {t: p for t, p in self.logs.items() if self._dir_of[t] == log_dir}
        write_offsets(os.path.join(log_dir, LOG_START_OFFSET_CHECKPOINT),
                      {t: p.log_start_offset for t, p in mine.items()})

    def release_expired(self, now_ms: int, force: bool = False) -> None:
        """Finishes deleting the logs whose file.delete.delay.ms has passed (all with force):
        closes their fds, then removes their renamed directories."""
        keep = []
        for deadline, plog, directory in self._deleted:
            if force or deadline <= now_ms:
                plog.release_files()
                if force:
                    shutil.rmtree(directory, ignore_errors=True)  # shutdown: nothing else to wait for
                else:
                    self.io.file_delete.submit(shutil.rmtree, directory, True)
            else:
                keep.append((deadline, plog, directory))
        self._deleted = keep
        held = []
        for deadline, fds in self._held_fds:
            if force or deadline <= now_ms:
                for fd in fds:
                    os.close(fd)
            else:
                held.append((deadline, fds))
        self._held_fds = held

    def close(self) -> None:
        """Clean shutdown: flush and close every log, write checkpoints, then the marker; the
        I/O threads stop last (pending deletions finish), even when something before failed.

        The marker is written last and only if everything before it succeeded, so its presence
        at the next start proves every log was flushed and every index trimmed.  The caller
        has stopped the cleaner and drained the group commit.
        """
        try:
            self.io.stop_writeback()  # its requests hold bare fds of the files closed below
            for plog in self.logs.values():
                plog.close()  # waits for its roll flush; flush: recovery point = log end offset
            for log_dir in self.log_dirs:
                self._write_checkpoints(log_dir)
            # No connection is sending any more: deleted logs' fds can go now.
            self.release_expired(0, force=True)
            for log_dir in self.log_dirs:
                write_atomic(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER), b"")
        finally:
            self.io.close()


def _read_properties(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith(("#", "!")) and "=" in line:
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip()
    return out
