"""ReplicaManager: the one owner of the partitions a node serves (Kafka's ReplicaManager).

Handlers translate the wire; everything that touches a partition's log goes through here:
- partition lookup: the log of a partition this node leads, else NOT_LEADER_OR_FOLLOWER (another
  node leads it: the client refreshes metadata) or UNKNOWN_TOPIC_OR_PARTITION, and the KIP-320
  leader-epoch check of the caller's epoch;
- appends (produce, transaction markers, the coordinators' internal topics) and, after each, the
  wake-up of long-polling fetches in one place; acks and the group-commit wait of flush.messages;
- the KIP-890 check that a transactional batch opening its producer's transaction here was added
  to that transaction by its coordinator;
- reads under both isolation levels with KIP-74 byte limits, and the long-poll wait (purgatory).

What a read reports (high watermark, last stable offset, log start) is what the cluster layer
will move: on one node the leader is the whole ISR, so the high watermark is the log end.
`FetchParams.replica_id` is where follower fetches (which move it) will enter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyk.errors import ErrorCode, KafkaError, error_for
from pyk.log import LogManager, PartitionLog
from pyk.log.control import MARKER_BYTES
from pyk.log.manager import Handover
from pyk.log.partition_log import READ_COMMITTED, LogAppendInfo
from pyk.log.record_batch import (
    ATTR_TRANSACTIONAL,
    BATCH_HEADER_SIZE,
    MAGIC,
    MAGIC_OFFSET,
    READ_ATTRIBUTES,
    READ_PRODUCER,
)
from pyk.log.segment import FileSlice
from pyk.server.engine import GroupCommit
from pyk.server.metadata_store import MetadataView, TopicInfo
from pyk.server.purgatory import FetchPurgatory, PartitionKey

log = logging.getLogger("pyk.server")

CONSUMER_REPLICA_ID = -1  # Fetch's replica_id of a consumer (followers send their node id)

FIRST_V2_ONLY_PRODUCE_VERSION = 3

# KIP-890 verification answers as the producer should see them (Kafka's AddPartitionsToTxnManager).
_VERIFY_ERRORS = {
    ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.INVALID_PRODUCER_ID_MAPPING: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.NOT_COORDINATOR: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS,
}


class TransactionVerifier(Protocol):
    """The transaction coordinator as the produce path needs it (KIP-890 part 1)."""

    def verify_produce(self, transactional_id: str, producer_id: int, epoch: int, topic: str,
                       partition: int) -> asyncio.Future[ErrorCode]: ...


# Produce -----------------------------------------------------------------------------------------
class ProduceBatches(Protocol):
    """A Produce request's partitions as the append needs them, in request order: parallel
    lists, the records zero-copy views of the request frame (pyk._native.ProduceRequestScan)."""

    @property
    def topics(self) -> list[str]: ...
    @property
    def partitions(self) -> list[int]: ...
    @property
    def records(self) -> list[memoryview | None]: ...


@dataclass(slots=True)
class PartitionResponse:
    """One partition's outcome of an append (Kafka's PartitionResponse)."""

    error: ErrorCode = ErrorCode.NONE
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    message: str | None = None

    def fail(self, code: ErrorCode, message: str | None) -> None:
        self.error, self.message = code, message
        self.base_offset = self.log_append_time = self.log_start_offset = -1


# Fetch -------------------------------------------------------------------------------------------
@dataclass(slots=True)
class FetchParams:
    """The request-wide part of a Fetch (Kafka's FetchParams)."""

    max_bytes: int
    min_bytes: int
    max_wait_ms: int
    isolation_level: int = 0
    replica_id: int = CONSUMER_REPLICA_ID


@dataclass(slots=True)
class FetchPartition:
    topic: str
    partition: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1


@dataclass(slots=True)
class FetchPartitionData:
    """One partition's answer: the bytes to send (a file slice, never copied) and its offsets."""

    error: ErrorCode = ErrorCode.NONE
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: FileSlice | None = None
    # (producer id, first offset) under read_committed; None under read_uncommitted
    aborted_transactions: list[tuple[int, int]] | None = None


@dataclass(slots=True)
class FetchResult:
    partitions: list[FetchPartitionData] = field(default_factory=list)
    bytes_read: int = 0
    any_error: bool = False
    # Per partition, the (byte limit, min_one_message) its read ran with: a re-read after a long
    # poll keeps a partition's answer when nothing changed in it and these are the same.
    limits: list[tuple[int, bool]] = field(default_factory=list)


def check_isolation_level(isolation_level: int) -> None:
    """Fetch and ListOffsets know Kafka's two isolation levels (0 read_uncommitted, 1
    read_committed); anything else is a bad request, reported per partition so that versions
    without a top-level error code carry it too."""
    if isolation_level not in (0, 1):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"isolation_level must be 0 or 1, found {isolation_level}")


def check_leader_epoch(current: int, leader_epoch: int) -> None:
    """KIP-320 fencing: a client that names a leader epoch must name the current one."""
    if current < 0:
        return
    if current < leader_epoch:
        raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH, f"client epoch {current} < leader epoch {leader_epoch}")
    if current > leader_epoch:
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH, f"client epoch {current} > leader epoch {leader_epoch}")


class ReplicaManager:
    """Owns the partitions of one node (see module docstring).

    Lifecycle: built with the node's LogManager and metadata view; `start(loop, group_commit,
    txn)` when the event loop runs; logs are attached with `attach` as snapshots place them here
    and `detach`ed when their topic goes.  Owned by the node's event loop; not thread-safe.
    """

    def __init__(self, logs: LogManager, metadata: MetadataView, base_node_id: int, node_id: int) -> None:
        self.logs = logs
        self.metadata = metadata
        self.base_node_id = base_node_id
        self.node_id = node_id
        self._purgatory: FetchPurgatory | None = None
        self._group_commit: GroupCommit | None = None
        self._txn: TransactionVerifier | None = None
        # Bytes appended to and read from each led partition since this shard started: the
        # load the shard balancer (pyk.server.balancer) measures over its window.
        self.bytes_in: dict[PartitionKey, int] = {}
        self.bytes_out: dict[PartitionKey, int] = {}

    def start(self, loop: asyncio.AbstractEventLoop, group_commit: GroupCommit, txn: TransactionVerifier) -> None:
        self._purgatory = FetchPurgatory(loop)
        self._group_commit = group_commit
        self._txn = txn

    # Partitions --------------------------------------------------------------------------------
    def attach(self, plog: PartitionLog, leader_epoch: int, group_commit_flushes: bool) -> None:
        """Serves `plog` as its leader at `leader_epoch`.  With `group_commit_flushes`, an
        append that reaches flush.messages schedules a shared flush (answered after it) instead
        of an fdatasync in line."""
        plog.on_stable_advance = self._on_stable_advance
        if group_commit_flushes:
            plog.on_flush_due = self._flush_due
        plog.become_leader(leader_epoch)

    def detach(self, topic: str, partition: int) -> None:
        """The partition is gone from this node: its log is deleted and its long polls answer."""
        if self.logs.get(topic, partition) is not None:
            self.logs.delete(topic, partition)
        if self._purgatory is not None:
            self._purgatory.wake_all((topic, partition))

    async def release(self, topic: str, partition: int) -> Handover:
        """Hands a led partition over to another shard (pyk.server.balancer): from now on its
        requests are answered NOT_LEADER_OR_FOLLOWER and its long polls return (clients
        refresh metadata); once no group commit holds it, its log is closed cleanly."""
        plog = self.logs.stop_serving(topic, partition)
        if plog is None:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{topic}-{partition} is not led by node {self.node_id}")
        key = (topic, partition)
        if self._purgatory is not None:
            self._purgatory.wake_all(key)
        if self._group_commit is not None:
            await self._group_commit.settle(plog)  # produce requests waiting on it are answered
        self.bytes_in.pop(key, None)
        self.bytes_out.pop(key, None)
        return self.logs.release(plog)

    def leader_of(self, info: TopicInfo, partition: int) -> int:
        """The node leading a partition of a known topic."""
        return self.base_node_id + info.placement[partition]

    def leader_log(self, topic: str, partition: int, current_leader_epoch: int = -1) -> PartitionLog:
        """The log of a partition this node leads, checked against the caller's leader epoch;
        NOT_LEADER_OR_FOLLOWER if another node leads it, else UNKNOWN_TOPIC_OR_PARTITION."""
        plog = self.logs.get(topic, partition)
        if plog is None:
            info = self.metadata.get(topic)
            if info is not None and 0 <= partition < info.partitions:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                                 f"{topic}-{partition} is led by node {self.leader_of(info, partition)}, "
                                 f"not {self.node_id}")
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")
        check_leader_epoch(current_leader_epoch, plog.leader_epoch)
        return plog

    # Appends -----------------------------------------------------------------------------------
    def append_records(self, batches: ProduceBatches, acks: int, produce_version: int, now_ms: int,
                       transactional_id: str | None = None
                       ) -> list[PartitionResponse] | Awaitable[list[PartitionResponse]]:
        """Appends each partition's batch (Kafka's appendRecords): the responses in request
        order, or an awaitable of them when a transactional batch must be verified first or a
        group commit must finish before the answer (acks=0 never waits)."""
        pending: dict[int, asyncio.Future[ErrorCode]] = {}
        if transactional_id is not None:
            assert self._txn is not None
            topics, partitions = batches.topics, batches.partitions
            for i, records in enumerate(batches.records):
                producer = self._needs_verification(topics[i], partitions[i], records)
                if producer is not None:
                    pending[i] = self._txn.verify_produce(transactional_id, producer[0], producer[1],
                                                          topics[i], partitions[i])
        if pending:
            return self._verified_append(batches, acks, produce_version, now_ms, pending)
        return self._append(batches, acks, produce_version, now_ms, None)

    async def _verified_append(self, batches: ProduceBatches, acks: int, produce_version: int,
                               now_ms: int, pending: dict[int, asyncio.Future[ErrorCode]]) -> list[PartitionResponse]:
        refused = {}
        for i, future in pending.items():
            code = await future
            if code != ErrorCode.NONE:
                where = f"{batches.topics[i]}-{batches.partitions[i]}"
                refused[i] = KafkaError(_VERIFY_ERRORS.get(code, code),
                                        f"{where} is not in the producer's transaction ({code.name})")
        result = self._append(batches, acks, produce_version, now_ms, refused)
        return await result if not isinstance(result, list) else result

    def _append(self, batches: ProduceBatches, acks: int, produce_version: int, now_ms: int,
                refused: dict[int, KafkaError] | None
                ) -> list[PartitionResponse] | Awaitable[list[PartitionResponse]]:
        # The per-partition loop of every produce request: locals instead of attribute lookups,
        # and the common case (a led partition, a v2 batch, no flush due) without calls
        # beyond append_to_log (the log's append, then the wake-up of long polls).
        responses = []
        flushes: list[tuple[PartitionResponse, asyncio.Future[None]]] = []
        topics, partitions = batches.topics, batches.partitions
        logs_get = self.logs.get
        check_magic = produce_version >= FIRST_V2_ONLY_PRODUCE_VERSION
        check_isr = acks == -1
        group_commit = self._group_commit if acks != 0 else None
        append_to_log = self.append_to_log  # the one place appends wake long polls
        bad_acks = None if acks in (0, 1, -1) else KafkaError(ErrorCode.INVALID_REQUIRED_ACKS,
                                                               f"acks must be 0, 1 or -1, found {acks}")
        for i, records in enumerate(batches.records):
            response = PartitionResponse()
            topic, partition = topics[i], partitions[i]
            try:
                if bad_acks is not None:
                    raise bad_acks
                if refused and i in refused:
                    raise refused[i]
                if records is None or len(records) == 0:
                    raise KafkaError(ErrorCode.INVALID_RECORD, "produce request without a record batch")
                if check_magic and len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] != MAGIC:
                    # As Kafka: v3+ carries magic v2 batches only; legacy sets come with Produce v0-v2
                    # (a v0/v1 message set entry has its magic at the same offset).
                    raise KafkaError(ErrorCode.INVALID_RECORD,
                                     f"Produce v{produce_version} requires magic 2, found {records[MAGIC_OFFSET]}")
                plog = logs_get(topic, partition)
                if plog is None:
                    plog = self.leader_log(topic, partition)  # raises the right error
                if check_isr and plog.config.min_insync_replicas > 1:
                    raise KafkaError(
                        ErrorCode.NOT_ENOUGH_REPLICAS,
                        f"min.insync.replicas={plog.config.min_insync_replicas} but this single node is the only "
                        "in-sync replica",
                    )
                info = append_to_log(plog, records, now_ms)
                response.base_offset = info.first_offset
                response.log_append_time = info.log_append_time
                response.log_start_offset = info.log_start_offset
                if group_commit is not None:
                    flush = group_commit.waiter(plog)
                    if flush is not None:
                        flushes.append((response, flush))
            except Exception as exc:
                response.fail(*error_for(exc, f"produce to {topic}-{partition}"))
            responses.append(response)
        return self._after_flushes(responses, flushes) if flushes else responses

    def append_to_log(self, plog: PartitionLog, records: memoryview, now_ms: int) -> LogAppendInfo:
        """One batch into a led log, waking the fetches waiting on it (also the coordinators'
        appends to their internal topics)."""
        info = plog.append(records, now_ms)
        if not info.duplicate:
            self._appended(plog, len(records))
        return info

    def append_control(self, topic: str, partition: int, producer_id: int, producer_epoch: int, commit: bool,
                       coordinator_epoch: int, now_ms: int) -> tuple[PartitionLog, int]:
        """A COMMIT/ABORT marker into a led partition: (the log, the marker's offset)."""
        plog = self.leader_log(topic, partition)
        offset = plog.append_control(producer_id, producer_epoch, commit, coordinator_epoch, now_ms)
        self._appended(plog, MARKER_BYTES)
        return plog, offset

    def flush_waiter(self, plog: PartitionLog) -> asyncio.Future[None] | None:
        """What a request that appended to `plog` awaits before answering (None: the flush policy
        asked for no flush)."""
        return self._group_commit.waiter(plog) if self._group_commit is not None else None

    @staticmethod
    async def _after_flushes(responses: list[PartitionResponse],
                             flushes: list[tuple[PartitionResponse, asyncio.Future[None]]]) -> list[PartitionResponse]:
        for response, flush in flushes:
            try:
                await asyncio.shield(flush)  # shared by every request of the round: never cancel it
            except KafkaError as exc:
                response.fail(exc.code, exc.message)
        return responses

    def _needs_verification(self, topic: str, partition: int, records: memoryview | None) -> tuple[int, int] | None:
        """(producer id, epoch) of a transactional v2 batch that would open its producer's
        transaction in this (local) partition; None when there is nothing to verify."""
        if records is None or len(records) < BATCH_HEADER_SIZE or records[MAGIC_OFFSET] != MAGIC:
            return None
        if not READ_ATTRIBUTES.unpack_from(records)[0] & ATTR_TRANSACTIONAL:
            return None
        plog = self.logs.get(topic, partition)
        if plog is None:
            return None  # the append reports NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION
        producer_id, epoch, _ = READ_PRODUCER.unpack_from(records)
        if plog.producer_state.in_transaction(producer_id, epoch):
            return None  # its transaction is already open here: verified when it began
        return producer_id, epoch

    # Reads -------------------------------------------------------------------------------------
    def read(self, params: FetchParams, partitions: Sequence[FetchPartition],
             previous: FetchResult | None = None, changed: Collection[PartitionKey] = ()) -> FetchResult:
        """One pass over the partitions (Kafka's readFromLocalLog): filled in order up to
        `params.max_bytes`, each capped at its own limit, and the first partition with data returns at
        least one whole batch (KIP-74).

        A re-read after a long poll passes the first pass as `previous` and the partitions that
        changed since (wait_for_data): any other partition whose read would run with the same
        limits keeps its answer, which the same read of an unchanged log would give again."""
        result = FetchResult()
        read_committed = params.isolation_level == READ_COMMITTED
        for i, fp in enumerate(partitions):
            limit = min(fp.max_bytes, params.max_bytes - result.bytes_read)
            min_one = result.bytes_read == 0
            result.limits.append((limit, min_one))
            if (previous is not None and previous.limits[i] == (limit, min_one)
                    and (fp.topic, fp.partition) not in changed):
                data = previous.partitions[i]
                result.partitions.append(data)
                if data.records is not None:
                    result.bytes_read += data.records.size
                result.any_error = result.any_error or data.error != ErrorCode.NONE
                continue
            data = FetchPartitionData(aborted_transactions=[] if read_committed else None)
            try:
                check_isolation_level(params.isolation_level)
                plog = self.leader_log(fp.topic, fp.partition, fp.current_leader_epoch)
                data.high_watermark = plog.high_watermark
                data.last_stable_offset = plog.last_stable_offset
                data.log_start_offset = plog.log_start_offset
                if limit > 0 or min_one:
                    info = plog.read(fp.fetch_offset, max(limit, 0), min_one_message=min_one,
                                     isolation_level=params.isolation_level)
                    if info.records is not None and info.records.size > 0:
                        data.records = info.records
                        if read_committed:
                            data.aborted_transactions = info.aborted_transactions or []
                        result.bytes_read += info.records.size
                        key = (fp.topic, fp.partition)
                        self.bytes_out[key] = self.bytes_out.get(key, 0) + info.records.size
            except Exception as exc:
                data.error, _ = error_for(exc, f"fetch from {fp.topic}-{fp.partition}")
                result.any_error = True
            result.partitions.append(data)
        return result

    async def wait_for_data(self, params: FetchParams, keys: list[PartitionKey], needed: int,
                            changed: set[PartitionKey] | None = None) -> bool:
        """Parks a fetch until `needed` more bytes it may read reach any of `keys` (True) or its
        max wait is up (False); the keys that changed meanwhile are added to `changed`."""
        assert self._purgatory is not None
        return await self._purgatory.wait(keys, needed, params.max_wait_ms,
                                          params.isolation_level == READ_COMMITTED, changed)

    # Events ------------------------------------------------------------------------------------
    def _appended(self, plog: PartitionLog, nbytes: int) -> None:
        key = (plog.topic, plog.partition)
        self.bytes_in[key] = self.bytes_in.get(key, 0) + nbytes
        if self._purgatory is not None:
            self._purgatory.on_append(key, nbytes)

    def _on_stable_advance(self, plog: PartitionLog, nbytes: int) -> None:
        """A log's last stable offset moved: wake read_committed long polls on it."""
        if self._purgatory is not None:
            self._purgatory.on_stable((plog.topic, plog.partition), nbytes)

    def _flush_due(self, plog: PartitionLog) -> None:
        assert self._group_commit is not None
        self._group_commit.schedule(plog)

