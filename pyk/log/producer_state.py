"""ProducerStateManager: idempotent-producer bookkeeping of one partition.

Owns, per producer id, the producer epoch and the metadata of its last 5 batches in this
partition (Kafka ProducerStateManager.java / ProducerStateEntry.java), which is what makes
`enable.idempotence=true` exact-once per partition:

  * a batch whose (first_seq, last_seq) equals one of the last 5 of its producer (same epoch) is
    a retry of a batch already written: the log answers with the ORIGINAL offsets and writes
    nothing (Kafka keeps 5 because a producer has at most 5 requests in flight);
  * otherwise the sequence must continue the last batch (last_seq + 1, wrapping from 2^31-1 to
    0), or be 0 for a producer this partition has not seen or for a new (bumped) epoch:
    anything else is OUT_OF_ORDER_SEQUENCE_NUMBER;
  * an epoch older than the producer's current one is fenced: INVALID_PRODUCER_EPOCH.

Transactions (KIP-98; Kafka ProducerAppendInfo.appendDataBatch / appendEndTxnMarker):

  * a producer's first transactional batch starts its ongoing transaction at that batch's first
    offset; later batches of it (transactional, any epoch at least the current) join it; a
    non-transactional batch while it is open is INVALID_TXN_STATE;
  * an end-transaction marker (PartitionLog.append_control) ends it: its epoch must not be
    older than the producer's (INVALID_PRODUCER_EPOCH) nor its coordinator epoch older than the
    last marker's (TRANSACTION_COORDINATOR_FENCED); a marker for a producer without an ongoing
    transaction is legal and ends nothing;
  * `ongoing` maps producer id -> first offset of its open transaction, in first-offset order
    (transactions start in log order, and a snapshot is reloaded sorted), so the first unstable
    offset -- the last stable offset when below the high watermark -- is its first value.

Persistence (pyk's choice, documented here): state is rebuilt at load from a snapshot plus a
replay of batch headers written after it.  Snapshots `<20-digit offset>.snapshot` are written at
every segment roll and at clean shutdown (`offset` = log end offset then: the state covers every
batch below it).  Loading takes the newest snapshot whose CRC checks and whose offset is <= the
log end offset, then replays the headers of later batches (markers included, so ongoing
transactions and, for recovered segments, the .txnindex entries come back); without a usable
snapshot it replays the whole log.  A snapshot past the log end (the tail was truncated) is
deleted.

Snapshot file format (pyk's own; Kafka's v1 stores only the last batch per producer, pyk keeps
the last 5 for duplicate detection; the two transaction fields are Kafka's v1 ones):

    Snapshot => version:int16 (=2) crc:uint32 body            crc = CRC32C of body
    body     => offset:int64 producer_count:int32 [Producer]
    Producer => producer_id:int64 epoch:int16 last_timestamp:int64 coordinator_epoch:int32
                current_txn_first_offset:int64 (-1: none) batch_count:int8 [Batch]
    Batch    => first_seq:int32 last_seq:int32 first_offset:int64 last_offset:int64

A snapshot of another version (pyk's v1 had no transaction fields) is ignored like a damaged
one: the state is then replayed from the log, which is always correct, only slower.

Not done yet: producer id expiration (producer.id.expiration.ms).  Owned by one PartitionLog on
its event loop.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.control import read_marker
from pyk.log.files import SNAPSHOT_SUFFIX, parse_offset_file, snapshot_path, write_atomic
from pyk.log.record_batch import (
    ATTR_CONTROL,
    ATTR_TRANSACTIONAL,
    READ_ATTRIBUTES,
    READ_MAX_TIMESTAMP,
    READ_PRODUCER,
)
from pyk.log.txn_index import AbortedTxn

if TYPE_CHECKING:
    from pyk.log.segment import LogSegment

log = logging.getLogger("pyk.log")

SEQUENCE_MAX = 2**31 - 1  # sequences are int32 and wrap to 0 after this
BATCHES_KEPT = 5  # Kafka ProducerStateEntry.NUM_BATCHES_TO_RETAIN (max.in.flight.requests)
SNAPSHOTS_KEPT = 2
SNAPSHOT_VERSION = 2

_SNAP_HEAD = struct.Struct(">hI")
_SNAP_BODY_HEAD = struct.Struct(">qi")
_SNAP_PRODUCER = struct.Struct(">qhqiqb")
_SNAP_BATCH = struct.Struct(">iiqq")
NO_OFFSET = -1


def last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    """Sequence of a batch's last record, wrapping past 2^31-1 (Kafka incrementSequence)."""
    if base_sequence > SEQUENCE_MAX - last_offset_delta:
        return last_offset_delta - (SEQUENCE_MAX - base_sequence) - 1
    return base_sequence + last_offset_delta


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == SEQUENCE_MAX)


class ProducerStateEntry:
    """One producer: its epoch, its last batches (first_seq, last_seq, first_offset, last_offset),
    the coordinator epoch of its last marker and the first offset of its open transaction."""

    __slots__ = ("producer_id", "epoch", "batches", "last_timestamp", "coordinator_epoch", "current_txn_first_offset")

    def __init__(self, producer_id: int, epoch: int, last_timestamp: int = -1, coordinator_epoch: int = -1,
                 current_txn_first_offset: int = NO_OFFSET) -> None:
        self.producer_id = producer_id
        self.epoch = epoch
        self.batches: deque[tuple[int, int, int, int]] = deque(maxlen=BATCHES_KEPT)
        self.last_timestamp = last_timestamp
        self.coordinator_epoch = coordinator_epoch
        self.current_txn_first_offset = current_txn_first_offset

    @property
    def last_offset(self) -> int:
        return self.batches[-1][3] if self.batches else -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1

    def bump_epoch(self, epoch: int) -> None:
        """A new epoch forgets the batch window (sequences restart) but not the transaction
        (Kafka maybeUpdateProducerEpoch)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.batches.clear()


class CompletedTxn(NamedTuple):
    """A transaction ended by a marker: the aborted ones go to the segment's .txnindex."""

    producer_id: int
    first_offset: int
    last_offset: int  # the marker's offset
    aborted: bool


class ProducerStateManager:
    """Per-partition producer table: check before append, update after (see module docstring).

    `check` / `check_marker` raise or report a duplicate without changing anything, so a batch
    that later fails to be written leaves the state untouched; `update` / `end_txn` record the
    written batch or marker.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerStateEntry] = {}
        # producer id -> first offset of its open transaction, in first-offset order.
        self.ongoing: dict[int, int] = {}

    def in_transaction(self, producer_id: int, epoch: int) -> bool:
        """Whether the producer, at this epoch, has a transaction open in this partition."""
        entry = self.producers.get(producer_id)
        return entry is not None and entry.epoch == epoch and entry.current_txn_first_offset >= 0

    # Append path --------------------------------------------------------------------------------
    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int,
              transactional: bool = False) -> tuple[int, int] | None:
        """(first_offset, last_offset) of the original if this batch is a duplicate, else None.

        Raises KafkaError INVALID_PRODUCER_EPOCH (fenced), OUT_OF_ORDER_SEQUENCE_NUMBER, or
        INVALID_TXN_STATE (a non-transactional batch inside an open transaction).
        """
        if first_seq < 0:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"producer {producer_id} sent a batch with producer id but no base sequence")
        entry = self.producers.get(producer_id)
        if entry is None:
            # First batch of this producer here (or its state expired with the log start):
            # only sequence 0 proves no earlier batch of it was lost.
            if first_seq != 0:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {producer_id} unknown to this partition must start at sequence 0, "
                                 f"found {first_seq}")
            return None
        # Duplicates are looked for before the epoch/sequence rules, as Kafka does: a retry of
        # an already written batch must succeed with its original offsets, not fail.
        if epoch == entry.epoch:
            for b_first, b_last, first_offset, last_offset in entry.batches:
                if b_first == first_seq and b_last == last_seq:
                    return first_offset, last_offset
        if epoch < entry.epoch:
            # Kafka (since 2.7, KIP-588) answers INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED,
            # so a transactional producer can abort and retry instead of dying.
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"producer {producer_id} epoch {epoch} is older than the current epoch {entry.epoch}")
        if epoch > entry.epoch:
            # Epoch bump (KIP-360 or a new InitProducerId): sequences restart at 0.
            if first_seq != 0:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {producer_id} new epoch {epoch} must start at sequence 0, found {first_seq}")
        elif entry.batches:
            # Same epoch: the batch must continue exactly after the last written one; a gap
            # means a batch in between was lost, an overlap that is not an exact duplicate is a bug.
            expected_after = entry.batches[-1][1]
            if not _in_sequence(expected_after, first_seq):
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {producer_id} epoch {epoch}: expected sequence "
                                 f"{0 if expected_after == SEQUENCE_MAX else expected_after + 1}, found {first_seq}")
        elif first_seq != 0:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {producer_id} has no batches here and must start at 0, found {first_seq}")
        if entry.current_txn_first_offset >= 0 and not transactional:
            raise KafkaError(ErrorCode.INVALID_TXN_STATE,
                             f"producer {producer_id} sent a non-transactional batch while its transaction "
                             f"from offset {entry.current_txn_first_offset} is open")
        return None

    def update(self, producer_id: int, epoch: int, first_seq: int, last_seq: int, first_offset: int,
               last_offset: int, timestamp: int, transactional: bool = False) -> None:
        """Records a written batch.  A new epoch starts a fresh batch window; the producer's
        first transactional batch opens its transaction."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = ProducerStateEntry(producer_id, epoch)
            self.producers[producer_id] = entry
        else:
            entry.bump_epoch(epoch)
        entry.batches.append((first_seq, last_seq, first_offset, last_offset))
        entry.last_timestamp = timestamp
        if transactional and entry.current_txn_first_offset < 0:
            entry.current_txn_first_offset = first_offset
            self.ongoing[producer_id] = first_offset

    def check_marker(self, producer_id: int, epoch: int, coordinator_epoch: int) -> None:
        """Raises unless an end-transaction marker with these epochs may be written (Kafka
        appendEndTxnMarker: checkProducerEpoch, checkCoordinatorEpoch)."""
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if epoch < entry.epoch:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"marker for producer {producer_id} has epoch {epoch}, older than the current "
                             f"epoch {entry.epoch}")
        if coordinator_epoch < entry.coordinator_epoch:
            raise KafkaError(ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                             f"marker for producer {producer_id} has coordinator epoch {coordinator_epoch}, older "
                             f"than {entry.coordinator_epoch}")

    def end_txn(self, producer_id: int, epoch: int, coordinator_epoch: int, commit: bool, marker_offset: int,
                timestamp: int) -> CompletedTxn | None:
        """Records a written marker; returns the transaction it ended (None: none was open)."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = ProducerStateEntry(producer_id, epoch)
            self.producers[producer_id] = entry
        else:
            entry.bump_epoch(epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = timestamp
        first = entry.current_txn_first_offset
        if first < 0:
            return None
        entry.current_txn_first_offset = NO_OFFSET
        del self.ongoing[producer_id]
        return CompletedTxn(producer_id, first, marker_offset, not commit)

    @property
    def first_unstable_offset(self) -> int | None:
        """First offset of the earliest open transaction, None when none is open."""
        return next(iter(self.ongoing.values()), None) if self.ongoing else None

    # Log start / end movement -------------------------------------------------------------------
    def truncate_head(self, log_start_offset: int) -> None:
        """Forgets producers whose last batch is now below the log start (Kafka does the same:
        their batches are gone, so there is nothing left to deduplicate against), with their
        open transaction if any (its data is gone too)."""
        gone = [pid for pid, e in self.producers.items() if e.last_offset < log_start_offset]
        for pid in gone:
            del self.producers[pid]
            self.ongoing.pop(pid, None)

    # Snapshots ----------------------------------------------------------------------------------
    def snapshot_offsets(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            offset = parse_offset_file(name, SNAPSHOT_SUFFIX)
            if offset is not None:
                out.append(offset)
        return sorted(out)

    def take_snapshot(self, offset: int, sync: bool = True) -> str:
        """Writes the state as of `offset` (every batch below it applied), prunes old ones and
        returns the file's path.

        sync=False (a roll, Kafka takeSnapshot(sync = false)): the file is written and renamed
        into place without fsync, which the caller does later off the event loop.  A snapshot
        lost or torn by a power failure before that is safe: load() rejects a damaged file (CRC,
        offset inside the body) and falls back to an older snapshot or to replaying the log."""
        # The offset is stored inside the CRC-covered body as well as in the file name, so a
        # renamed or mixed-up file is detected on load.
        parts = [_SNAP_BODY_HEAD.pack(offset, len(self.producers))]
        for entry in self.producers.values():
            parts.append(_SNAP_PRODUCER.pack(entry.producer_id, entry.epoch, entry.last_timestamp,
                                             entry.coordinator_epoch, entry.current_txn_first_offset,
                                             len(entry.batches)))
            parts.extend(_SNAP_BATCH.pack(*b) for b in entry.batches)
        body = b"".join(parts)
        path = snapshot_path(self.directory, offset)
        write_atomic(path, _SNAP_HEAD.pack(SNAPSHOT_VERSION, _native.crc32c(body)) + body, sync)
        for old in self.snapshot_offsets()[:-SNAPSHOTS_KEPT]:
            _unlink(snapshot_path(self.directory, old))
        return path

    def _read_snapshot(self, offset: int) -> dict[int, ProducerStateEntry] | None:
        """The producers of a snapshot file, or None if it is damaged or of another version."""
        path = snapshot_path(self.directory, offset)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            version, crc = _SNAP_HEAD.unpack_from(data, 0)
            body = memoryview(data)[_SNAP_HEAD.size:]
            if version != SNAPSHOT_VERSION or _native.crc32c(body) != crc:
                return None
            stored_offset, count = _SNAP_BODY_HEAD.unpack_from(body, 0)
            if stored_offset != offset:
                return None
            at = _SNAP_BODY_HEAD.size
            producers = {}
            for _ in range(count):
                pid, epoch, ts, coordinator_epoch, txn_first, n = _SNAP_PRODUCER.unpack_from(body, at)
                at += _SNAP_PRODUCER.size
                entry = ProducerStateEntry(pid, epoch, ts, coordinator_epoch, txn_first)
                for _ in range(n):
                    entry.batches.append(_SNAP_BATCH.unpack_from(body, at))
                    at += _SNAP_BATCH.size
                producers[pid] = entry
            if at != len(body):
                return None
            return producers
        except (OSError, struct.error):
            return None

    def load(self, segments: Iterable[LogSegment], log_start_offset: int, log_end_offset: int,
             rebuild_txn_index_from: int | None = None) -> None:
        """Rebuilds the state: newest valid snapshot <= log end, then replay of later headers.

        `segments` is the log's LogSegments (ordered).  Replay reads only batch headers, plus
        the one record of each marker.  With `rebuild_txn_index_from` (LogLoader, after it
        recovered the segments from that base offset on, with their .txnindex emptied), only
        a snapshot at or below that offset is used, and the transactions aborted by replayed
        markers in those segments are indexed again (Kafka LogSegment.recover does the same).
        """
        self.producers = {}
        start = None
        limit = log_end_offset if rebuild_txn_index_from is None else min(log_end_offset, rebuild_txn_index_from)
        for offset in reversed(self.snapshot_offsets()):
            if offset > log_end_offset:
                # Written before the log lost its tail (crash/truncation): describes batches
                # that no longer exist.
                _unlink(snapshot_path(self.directory, offset))
                continue
            if offset > limit:
                continue  # still valid, but later than the segments whose index is rebuilt
            producers = self._read_snapshot(offset)
            if producers is None:
                log.warning("%s: producer snapshot at %d is damaged or of another version; ignoring it",
                            self.directory, offset)
                _unlink(snapshot_path(self.directory, offset))
                continue
            self.producers = producers
            start = offset
            break
        self.ongoing = dict(sorted(((pid, e.current_txn_first_offset) for pid, e in self.producers.items()
                                    if e.current_txn_first_offset >= 0), key=lambda item: item[1]))
        # Replay every batch at/after the snapshot offset, in log order, through the same
        # update() / end_txn() the append path uses, so the rebuilt state equals the state
        # before the stop.
        replay_from = start if start is not None else 0
        replayed = 0
        for segment in segments:
            if segment.next_offset <= replay_from:
                continue
            reindex = rebuild_txn_index_from is not None and segment.base_offset >= rebuild_txn_index_from
            for batch, header in segment.iter_headers():
                if batch.last_offset < replay_from:
                    continue
                pid, epoch, base_seq = READ_PRODUCER.unpack_from(header)
                if pid < 0:
                    continue
                attributes = READ_ATTRIBUTES.unpack_from(header)[0]
                max_ts = READ_MAX_TIMESTAMP.unpack_from(header)[0]
                if attributes & ATTR_CONTROL:
                    try:
                        commit, coordinator_epoch = read_marker(segment.read_batch(batch))
                    except (ValueError, IndexError, struct.error):
                        log.warning("%s: control batch at %d is not a transaction marker; skipped",
                                    self.directory, batch.base_offset)
                        continue
                    completed = self.end_txn(pid, epoch, coordinator_epoch, commit, batch.base_offset, max_ts)
                    if reindex and completed is not None and completed.aborted:
                        segment.update_txn_index(AbortedTxn(pid, completed.first_offset, completed.last_offset,
                                                            self.last_stable_offset_after(completed)))
                elif base_seq >= 0:
                    self.update(pid, epoch, base_seq, last_sequence(base_seq, batch.last_offset - batch.base_offset),
                                batch.base_offset, batch.last_offset, max_ts, bool(attributes & ATTR_TRANSACTIONAL))
                else:
                    continue
                replayed += 1
        self.truncate_head(log_start_offset)
        if replayed:
            log.info("%s: producer state rebuilt from %s plus %d batches", self.directory,
                     f"snapshot {start}" if start is not None else "the log", replayed)

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The partition's last stable offset once `completed` has ended (Kafka
        ProducerStateManager.lastStableOffset): the first offset of the earliest other open
        transaction, else one past the marker.  Call after end_txn removed it from `ongoing`."""
        return next(iter(self.ongoing.values()), completed.last_offset + 1)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
