"""File and directory naming of the log layer, the same names Kafka uses on disk.

Owns: segment file names (20-digit zero-padded base offset + suffix), partition directory names
(`<topic>-<partition>`, plus the `.<hex>-delete` form used while a partition is being removed),
the names of per-directory checkpoint files and the clean-shutdown marker, and two small I/O
helpers every writer of metadata files shares (atomic replace, directory fsync).

Keeping Kafka's names (LogFileUtils.java, LogManager.scala) means `kafka-dump-log.sh`, operators'
scripts and Kafka documentation all apply to a pyk log directory unchanged.
"""

from __future__ import annotations

import os
import re
import uuid

# Segment file suffixes (Kafka LogFileUtils).  A segment is the triple of files sharing one
# base offset; the .log holds record batches, the two indexes are sparse lookups into it.
LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"  # aborted transactions whose marker is in the segment (TransactionIndex)
SNAPSHOT_SUFFIX = ".snapshot"  # producer state at an offset (ProducerStateManager)
DELETED_SUFFIX = ".deleted"  # a file of a deleted segment, removed after file.delete.delay.ms
CLEANED_SUFFIX = ".cleaned"  # a compaction result being written (left over by a crash: discarded)
SWAP_SUFFIX = ".swap"  # a complete compaction result being swapped in (a crash: the swap completes)
TMP_SUFFIX = ".tmp"  # an atomic write in progress (left over by a crash: discarded)

# Per-log-directory files (Kafka LogManager / LogLoader).
RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"  # first dirty offset per compacted partition
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"  # high watermarks (Kafka's ReplicaManager)
META_PROPERTIES = "meta.properties"
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"

# Per-partition-directory file (Kafka LeaderEpochCheckpointFile).
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"

# `<topic>-<partition>.<32 hex>-delete`: Kafka's name for a partition directory renamed away
# before its files are removed, so a crash mid-removal never resurrects the partition.
DELETE_DIR_SUFFIX = "-delete"
_DELETE_DIR_RE = re.compile(r"^(?P<name>.+)\.[0-9a-f]{32}-delete$")
_NAME_MAX = 255  # longest file name of Linux file systems

_OFFSET_WIDTH = 20  # enough digits for any non-negative int64


def offset_name(offset: int) -> str:
    """`00000000000000000042` for 42: zero padding keeps lexical order equal to offset order."""
    return f"{offset:0{_OFFSET_WIDTH}d}"


def segment_paths(directory: str, base_offset: int, suffix: str = "") -> tuple[str, str, str]:
    """Paths of the .log, .index and .timeindex files of the segment starting at base_offset,
    with `suffix` appended (`.cleaned`, `.swap`: compaction output not yet live)."""
    stem = os.path.join(directory, offset_name(base_offset))
    return stem + LOG_SUFFIX + suffix, stem + INDEX_SUFFIX + suffix, stem + TIME_INDEX_SUFFIX + suffix


def txn_index_path(directory: str, base_offset: int) -> str:
    """Path of the .txnindex of the segment starting at base_offset (created only when needed)."""
    return os.path.join(directory, offset_name(base_offset) + TXN_INDEX_SUFFIX)


def snapshot_path(directory: str, offset: int) -> str:
    return os.path.join(directory, offset_name(offset) + SNAPSHOT_SUFFIX)


def parse_offset_file(name: str, suffix: str) -> int | None:
    """The base offset encoded in a file name with the given suffix, or None if it is not one."""
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    if len(stem) != _OFFSET_WIDTH or not stem.isdigit():
        return None
    return int(stem)


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def delete_dir_name(topic: str, partition: int) -> str:
    """`<topic>-<partition>.<32 hex>-delete`, the topic cut short so that the name fits
    _NAME_MAX, as Kafka's LocalLog.logDeleteDirName does: a legal 249-character topic name
    would not fit otherwise (ENAMETOOLONG, found by the live fuzzer).  Topic names are ASCII."""
    suffix = f"-{partition}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
    return topic[: _NAME_MAX - len(suffix)] + suffix


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """(topic, partition) from `<topic>-<partition>`; None for anything else.

    Topic names may themselves contain '-', so the partition is what follows the LAST '-'.
    Directories being deleted (`...-delete`) and Kafka's `-future`/`-stray` forms are not
    partition directories.
    """
    topic, sep, part = name.rpartition("-")
    if not sep or not topic or not part.isdigit() or "." in part:
        return None
    return topic, int(part)


def is_delete_dir(name: str) -> bool:
    return _DELETE_DIR_RE.match(name) is not None


def fsync_dir(path: str) -> None:
    """fsync a directory so that file creations/renames in it survive a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, sync: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content.

    Kafka's CheckpointFile protocol: write `<path>.tmp`, fsync it, rename over the target,
    fsync the directory (the rename itself is only durable once the directory is synced).
    With sync=False the two fsyncs are left to the caller (`fsync_file` + `fsync_dir` later,
    off the event loop): a process kill still leaves the old or the new content, a power loss
    may leave a damaged file under the new name, which only a reader that validates the
    content (and can do without the file) may accept -- the producer snapshots of a roll.
    """
    tmp = path + TMP_SUFFIX
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path) or ".")


def fsync_file(path: str) -> None:
    """fsync a file written earlier with write_atomic(sync=False); one removed since (a newer
    snapshot pruned it) needs nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
