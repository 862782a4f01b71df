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

Persistence (pyk's choice, documented here): state is rebuilt at load from a snapshot plus a
replay of batch headers written after it.  Snapshots `<20-digit offset>.snapshot` are written at
every segment roll and at clean shutdown (`offset` = log end offset then: the state covers every
batch below it).  Loading takes the newest snapshot whose CRC checks and whose offset is <= the
log end offset, then replays the headers of later batches; without a usable snapshot it replays
the whole log.  A snapshot past the log end (the tail was truncated) is deleted.

Snapshot file format (pyk's own; Kafka's stores only the last batch per producer):

    Snapshot => version:int16 crc:uint32 body                 crc = CRC32C of body
    body     => offset:int64 producer_count:int32 [Producer]
    Producer => producer_id:int64 epoch:int16 last_timestamp:int64 batch_count:int8 [Batch]
    Batch    => first_seq:int32 last_seq:int32 first_offset:int64 last_offset:int64

Not done yet: producer id expiration (producer.id.expiration.ms) and transactions (ongoing
transaction tracking, last stable offset).  Owned by one PartitionLog on its event loop.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from collections.abc import Iterable

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.files import SNAPSHOT_SUFFIX, parse_offset_file, snapshot_path, write_atomic

log = logging.getLogger("pyk.log")

SEQUENCE_MAX = 2**31 - 1  # sequences are int32 and wrap to 0 after this
BATCHES_KEPT = 5  # Kafka ProducerStateEntry.NUM_BATCHES_TO_RETAIN (max.in.flight.requests)
SNAPSHOTS_KEPT = 2
SNAPSHOT_VERSION = 1

_SNAP_HEAD = struct.Struct(">hI")
_SNAP_BODY_HEAD = struct.Struct(">qi")
_SNAP_PRODUCER = struct.Struct(">qhqb")
_SNAP_BATCH = struct.Struct(">iiqq")
# Producer fields of the batch header: producerId @43, producerEpoch @51, baseSequence @53.
_HEADER_PRODUCER = struct.Struct(">qhi")


def last_sequence(base_sequence: int, last_offset_delta: int) -> int:
    """Sequence of a batch's last record, wrapping past 2^31-1 (Kafka incrementSequence)."""
    if base_sequence > SEQUENCE_MAX - last_offset_delta:
        return last_offset_delta - (SEQUENCE_MAX - base_sequence) - 1
    return base_sequence + last_offset_delta


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == SEQUENCE_MAX)


class ProducerStateEntry:
    """One producer's epoch and its last batches: (first_seq, last_seq, first_offset, last_offset)."""

    __slots__ = ("producer_id", "epoch", "batches", "last_timestamp")

    def __init__(self, producer_id: int, epoch: int, last_timestamp: int = -1) -> None:
        self.producer_id = producer_id
        self.epoch = epoch
        self.batches: deque[tuple[int, int, int, int]] = deque(maxlen=BATCHES_KEPT)
        self.last_timestamp = last_timestamp

    @property
    def last_offset(self) -> int:
        return self.batches[-1][3] if self.batches else -1


class ProducerStateManager:
    """Per-partition producer table: check before append, update after (see module docstring).

    `check` raises or reports a duplicate without changing anything, so a batch that later
    fails to be written leaves the state untouched; `update` records the written batch.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerStateEntry] = {}

    # Append path --------------------------------------------------------------------------------
    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> tuple[int, int] | None:
        """(first_offset, last_offset) of the original if this batch is a duplicate, else None.

        Raises KafkaError INVALID_PRODUCER_EPOCH (fenced) or OUT_OF_ORDER_SEQUENCE_NUMBER.
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
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"producer {producer_id} epoch {epoch} is older than the current epoch {entry.epoch}")
        if epoch > entry.epoch:
            # Epoch bump (KIP-360 or a new InitProducerId): sequences restart at 0.
            if first_seq != 0:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {producer_id} new epoch {epoch} must start at sequence 0, found {first_seq}")
            return None
        # Same epoch: the batch must continue exactly after the last written one; a gap means
        # a batch in between was lost, an overlap that is not an exact duplicate is a bug.
        if entry.batches:
            expected_after = entry.batches[-1][1]
            if not _in_sequence(expected_after, first_seq):
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {producer_id} epoch {epoch}: expected sequence "
                                 f"{0 if expected_after == SEQUENCE_MAX else expected_after + 1}, found {first_seq}")
        elif first_seq != 0:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {producer_id} has no batches here and must start at 0, found {first_seq}")
        return None

    def update(self, producer_id: int, epoch: int, first_seq: int, last_seq: int, first_offset: int,
               last_offset: int, timestamp: int) -> None:
        """Records a written batch.  A new epoch starts a fresh batch window."""
        entry = self.producers.get(producer_id)
        if entry is None or entry.epoch != epoch:
            entry = ProducerStateEntry(producer_id, epoch)
            self.producers[producer_id] = entry
        entry.batches.append((first_seq, last_seq, first_offset, last_offset))
        entry.last_timestamp = timestamp

    # Log start / end movement -------------------------------------------------------------------
    def truncate_head(self, log_start_offset: int) -> None:
        """Forgets producers whose last batch is now below the log start (Kafka does the same:
        their batches are gone, so there is nothing left to deduplicate against)."""
        gone = [pid for pid, e in self.producers.items() if e.last_offset < log_start_offset]
        for pid in gone:
            del self.producers[pid]

    # Snapshots ----------------------------------------------------------------------------------
    def snapshot_offsets(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            offset = parse_offset_file(name, SNAPSHOT_SUFFIX)
            if offset is not None:
                out.append(offset)
        return sorted(out)

    def take_snapshot(self, offset: int) -> None:
        """Writes the state as of `offset` (every batch below it applied) and prunes old ones."""
        # The offset is stored inside the CRC-covered body as well as in the file name, so a
        # renamed or mixed-up file is detected on load.
        parts = [_SNAP_BODY_HEAD.pack(offset, len(self.producers))]
        for entry in self.producers.values():
            parts.append(_SNAP_PRODUCER.pack(entry.producer_id, entry.epoch, entry.last_timestamp, len(entry.batches)))
            parts.extend(_SNAP_BATCH.pack(*b) for b in entry.batches)
        body = b"".join(parts)
        write_atomic(snapshot_path(self.directory, offset), _SNAP_HEAD.pack(SNAPSHOT_VERSION, _native.crc32c(body)) + body)
        for old in self.snapshot_offsets()[:-SNAPSHOTS_KEPT]:
            _unlink(snapshot_path(self.directory, old))

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
                pid, epoch, ts, n = _SNAP_PRODUCER.unpack_from(body, at)
                at += _SNAP_PRODUCER.size
                entry = ProducerStateEntry(pid, epoch, ts)
                for _ in range(n):
                    entry.batches.append(_SNAP_BATCH.unpack_from(body, at))
                    at += _SNAP_BATCH.size
                producers[pid] = entry
            if at != len(body):
                return None
            return producers
        except (OSError, struct.error):
            return None

    def load(self, segments: Iterable, log_start_offset: int, log_end_offset: int) -> None:
        """Rebuilds the state: newest valid snapshot <= log end, then replay of later headers.

        `segments` is the log's LogSegments (ordered).  Replay reads only batch headers.
        """
        self.producers = {}
        start = None
        for offset in reversed(self.snapshot_offsets()):
            if offset > log_end_offset:
                # Written before the log lost its tail (crash/truncation): describes batches
                # that no longer exist.
                _unlink(snapshot_path(self.directory, offset))
                continue
            producers = self._read_snapshot(offset)
            if producers is None:
                log.warning("%s: producer snapshot at %d is damaged; ignoring it", self.directory, offset)
                _unlink(snapshot_path(self.directory, offset))
                continue
            self.producers = producers
            start = offset
            break
        # Replay every batch at/after the snapshot offset, in log order, through the same
        # update() the append path uses, so the rebuilt state equals the state before the stop.
        replay_from = start if start is not None else 0
        replayed = 0
        for segment in segments:
            if segment.next_offset <= replay_from:
                continue
            for batch, header in segment.iter_headers():
                if batch.last_offset < replay_from:
                    continue
                pid, epoch, base_seq = _HEADER_PRODUCER.unpack_from(header, 43)
                if pid < 0 or base_seq < 0:
                    continue
                max_ts = struct.unpack_from(">q", header, 35)[0]
                self.update(pid, epoch, base_seq, last_sequence(base_seq, batch.last_offset - batch.base_offset),
                            batch.base_offset, batch.last_offset, max_ts)
                replayed += 1
        self.truncate_head(log_start_offset)
        if replayed:
            log.info("%s: producer state rebuilt from %s plus %d batches", self.directory,
                     f"snapshot {start}" if start is not None else "the log", replayed)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
