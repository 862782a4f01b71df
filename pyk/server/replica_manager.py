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

What a read reports (high watermark, last stable offset, log start): on one node the leader is
the whole ISR, so the high watermark is the log end.  In a ZooKeeper cluster (docs/cluster.md)
every partition of this node is a `Partition` (pyk.server.partition), led here or followed
from another node: followers fetch with their node id as `FetchParams.replica_id` and read up
to the log end; their fetch offsets move the high watermark and the ISR (changed through the
orchestrator's ZooKeeper session, conditional on the partition state's version); acks=all
answers wait until the high watermark passes their records, and min.insync.replicas is checked
against the ISR.  Partitions under the leader replication throttle (pyk.server.replication_quota)
send nothing to out-of-sync followers while the throttle's rate is exceeded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
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
from pyk.server.metrics import PartitionTraffic
from pyk.server.partition import Partition
from pyk.server.purgatory import HIGH_WATERMARK, LAST_STABLE, LOG_END, FetchPurgatory, PartitionKey
from pyk.server.replication_quota import ReplicationQuota

log = logging.getLogger("pyk.server")

CONSUMER_REPLICA_ID = -1  # Fetch's replica_id of a consumer (followers send their node id)

FIRST_V2_ONLY_PRODUCE_VERSION = 3

# KIP-890 verification answers as the producer should see them (Kafka's AddPartitionsToTxnManager).
_VERIFY_ERRORS = {
    ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.NOT_COORDINATOR: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS,
}


class AlterIsr(Protocol):
    """Writes a leader's new ISR to the cluster state (the orchestrator's ZooKeeper session):
    the state's new version; raises KafkaError when the state changed meanwhile."""

    def __call__(self, topic: str, partition: int, leader: int, leader_epoch: int, isr: list[int],
                 version: int) -> Awaitable[int]: ...


class TransactionVerifier(Protocol):
    """The transaction coordinator as the produce path needs it (KIP-890 part 1)."""

    def verify_produce(self, transactional_id: str, producer_id: int, epoch: int, topic: str,
                       partition: int) -> asyncio.Future[ErrorCode]: ...


# Produce -----------------------------------------------------------------------------------------
# Append errors Kafka answers without the partition's log start offset (ReplicaManager's
# appendToLocalLog: the request never reached the log); every other one carries it.
_NO_LOG_START_ERRORS = frozenset({
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.MESSAGE_TOO_LARGE,
    ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.CORRUPT_MESSAGE, ErrorCode.KAFKA_STORAGE_ERROR,
    ErrorCode.UNKNOWN_TOPIC_ID,
})  # fmt: skip


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
    # A consumer's client.rack (Fetch v11+, KIP-392: "" when it set none); None before v11,
    # whose consumers read from leaders only.
    rack_id: str | None = None


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
    preferred_read_replica: int = -1  # KIP-392: the leader sends the consumer to this replica (no records then)


@dataclass(slots=True)
class FetchResult:
    partitions: list[FetchPartitionData] = field(default_factory=list)
    bytes_read: int = 0
    any_error: bool = False
    redirected: bool = False  # a partition names a preferred read replica: answered at once (KIP-392)
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


async def _answered(code: ErrorCode) -> ErrorCode:
    return code


async def _within(future: asyncio.Future[ErrorCode], timeout_ms: int) -> ErrorCode:
    try:
        return await asyncio.wait_for(future, max(timeout_ms, 0) / 1000)
    except asyncio.TimeoutError:
        return ErrorCode.REQUEST_TIMED_OUT


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
        self._loop: asyncio.AbstractEventLoop | None = None
        # A cluster's replicated partitions of this node (empty on a single host) and the
        # writer of ISR changes (set by enable_replication).
        self.partitions: dict[PartitionKey, Partition] = {}
        self._alter_isr: AlterIsr | None = None
        self._max_lag_ms = 0
        self._leader_quota: ReplicationQuota | None = None  # replication throttles (reassignments)
        self._isr_task: asyncio.Task[None] | None = None
        # Partition errors by code (Kafka's ErrorsPerSec of Produce and Fetch), for the metrics.
        self.produce_errors: Counter[int] = Counter()
        self.fetch_errors: Counter[int] = Counter()
        self.traffic: dict[PartitionLog, PartitionTraffic] = {}  # of every attached log
        # replica.selector.class is Kafka's RackAwareReplicaSelector: a leader sends a consumer
        # with a client.rack to an in-sync replica in that rack (KIP-392); else leaders serve.
        self.rack_aware_selection = False

    def start(self, loop: asyncio.AbstractEventLoop, group_commit: GroupCommit, txn: TransactionVerifier) -> None:
        self._purgatory = FetchPurgatory(loop)
        self._group_commit = group_commit
        self._txn = txn
        self._loop = loop

    def enable_replication(self, alter_isr: AlterIsr, max_lag_ms: int, leader_quota: ReplicationQuota) -> None:
        """This node is in a cluster: partitions are replicated from here on, ISR changes go
        through `alter_isr`, followers not caught up for `max_lag_ms` leave the ISR, and the
        partitions `leader_quota` throttles reach out-of-sync followers at its rate."""
        self._alter_isr, self._max_lag_ms, self._leader_quota = alter_isr, max_lag_ms, leader_quota
        if self._isr_task is None:
            self._isr_task = asyncio.ensure_future(self._shrink_isrs())

    def stop(self) -> None:
        if self._isr_task is not None:
            self._isr_task.cancel()

    # Partitions --------------------------------------------------------------------------------
    def attach(self, plog: PartitionLog, leader_epoch: int, group_commit_flushes: bool) -> None:
        """Serves `plog` as its leader at `leader_epoch`.  With `group_commit_flushes`, an
        append that reaches flush.messages schedules a shared flush (answered after it) instead
        of an fdatasync in line."""
        self._track(plog)
        plog.on_stable_advance = self._on_stable_advance
        if group_commit_flushes:
            plog.on_flush_due = self._flush_due
        plog.become_leader(leader_epoch)

    def make_replica(self, plog: PartitionLog, leader: int, leader_epoch: int, replicas: list[int], isr: list[int],
                     version: int) -> Partition:
        """Serves a replicated partition with the state of the latest snapshot: as its leader
        (from its log end, at `leader_epoch`) or as a follower of `leader` (the caller's fetchers
        fetch it)."""
        key = (plog.topic, plog.partition)
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = Partition(plog, self.node_id)
            plog.start_replication(self.logs.checkpointed_high_watermark(plog.topic, plog.partition))
            plog.on_stable_advance = self._on_stable_advance
        if part.update_state(leader, leader_epoch, replicas, isr, version, int(time.time() * 1000)):
            plog.become_leader(leader_epoch)
            log.info("%s-%d: leader at epoch %d, isr %s", plog.topic, plog.partition, leader_epoch, isr)
        if part.is_leader:
            self._maybe_advance_hw(part)
        if self._purgatory is not None:
            self._purgatory.wake_all(key)  # parked fetches re-check leadership
        return part

    def _track(self, plog: PartitionLog) -> PartitionTraffic:
        """The traffic counters of a log, made when first needed (attach, or a log appended to
        without being attached: the coordinators' tests)."""
        traffic = self.traffic.get(plog)
        if traffic is None:
            traffic = self.traffic[plog] = PartitionTraffic(plog.log_end_offset)
        return traffic

    def detach(self, topic: str, partition: int) -> None:
        """The partition is gone from this node: its log is deleted and its long polls answer."""
        part = self.partitions.pop((topic, partition), None)
        if part is not None:
            part.fail_waiters(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        plog = self.logs.get(topic, partition)
        if plog is not None:
            self.traffic.pop(plog, None)
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
        self.traffic.pop(plog, None)
        return self.logs.release(plog)

    def leader_of(self, info: TopicInfo, partition: int) -> int:
        """The node leading a partition of a known topic (-1: none now)."""
        if info.leaders:
            return info.leaders[partition]
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
        if self.partitions:
            part = self.partitions.get((topic, partition))
            if part is None or not part.is_leader:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{topic}-{partition} is not led by node {self.node_id}")
        check_leader_epoch(current_leader_epoch, plog.leader_epoch)
        return plog

    def led_log(self, topic: str, partition: int) -> PartitionLog | None:
        """The log of a partition this node leads, else None (a follower's log is not led)."""
        if self.partitions:
            part = self.partitions.get((topic, partition))
            return part.log if part is not None and part.is_leader else None
        return self.logs.get(topic, partition)

    # Appends -----------------------------------------------------------------------------------
    def append_records(self, batches: ProduceBatches, acks: int, produce_version: int, now_ms: int,
                       transactional_id: str | None = None, timeout_ms: int = 30000,
                       refused: dict[int, KafkaError] | None = None,
                       ) -> list[PartitionResponse] | Awaitable[list[PartitionResponse]]:
        """Appends each partition's batch (Kafka's appendRecords): the responses in request
        order, or an awaitable of them when a transactional batch must be verified first or a
        group commit must finish before the answer (acks=0 never waits).  `refused`: partitions
        (by index) answered with that error and not appended (the authorizer's denials)."""
        pending: dict[int, asyncio.Future[ErrorCode]] = {}
        if transactional_id is not None:
            assert self._txn is not None
            topics, partitions = batches.topics, batches.partitions
            for i, records in enumerate(batches.records):
                if refused and i in refused:
                    continue
                producer = self._needs_verification(topics[i], partitions[i], records)
                if producer is not None:
                    pending[i] = self._txn.verify_produce(transactional_id, producer[0], producer[1],
                                                          topics[i], partitions[i])
        if pending:
            return self._verified_append(batches, acks, produce_version, now_ms, pending, timeout_ms, refused)
        return self._append(batches, acks, produce_version, now_ms, refused, timeout_ms)

    async def _verified_append(self, batches: ProduceBatches, acks: int, produce_version: int,
                               now_ms: int, pending: dict[int, asyncio.Future[ErrorCode]],
                               timeout_ms: int, denied: dict[int, KafkaError] | None) -> list[PartitionResponse]:
        refused = dict(denied or {})
        for i, future in pending.items():
            code = await future
            if code != ErrorCode.NONE:
                where = f"{batches.topics[i]}-{batches.partitions[i]}"
                refused[i] = KafkaError(_VERIFY_ERRORS.get(code, code),
                                        f"{where} is not in the producer's transaction ({code.name})")
        result = self._append(batches, acks, produce_version, now_ms, refused, timeout_ms)
        return await result if not isinstance(result, list) else result

    def _append(self, batches: ProduceBatches, acks: int, produce_version: int, now_ms: int,
                refused: dict[int, KafkaError] | None, timeout_ms: int,
                ) -> list[PartitionResponse] | Awaitable[list[PartitionResponse]]:
        # The per-partition loop of every produce request: locals instead of attribute lookups,
        # and the common case (a led partition, a v2 batch, no flush due) without calls
        # beyond append_to_log (the log's append, then the wake-up of long polls).
        responses = []
        flushes: list[tuple[PartitionResponse, asyncio.Future[None]]] = []
        replicated = self.partitions  # empty on a single host
        acks_all: list[tuple[PartitionResponse, asyncio.Future[ErrorCode]]] | None = [] if replicated else None
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
            plog: PartitionLog | None = None
            try:
                if bad_acks is not None:
                    raise bad_acks
                if refused and i in refused:
                    raise refused[i]
                if records is None or len(records) == 0:
                    raise KafkaError(ErrorCode.INVALID_RECORD, "produce request without a record batch")
                if check_magic and len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] != MAGIC:
                    # As Kafka: v3+ carries magic v2 batches only; legacy sets come with Produce v0-v2
                    # (a v0/v1 message set entry has its magic at the same offset); a magic above 2
                    # is no known format at all.
                    magic = records[MAGIC_OFFSET]
                    raise KafkaError(ErrorCode.CORRUPT_MESSAGE if magic > MAGIC else ErrorCode.INVALID_RECORD,
                                     f"Produce v{produce_version} requires magic 2, found {magic}")
                plog = logs_get(topic, partition)
                if plog is None:
                    plog = self.leader_log(topic, partition)  # raises the right error
                if replicated:
                    part = self._led_partition(topic, partition)
                    if check_isr and len(part.isr) < plog.config.min_insync_replicas:
                        raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                                         f"min.insync.replicas={plog.config.min_insync_replicas} but the ISR of "
                                         f"{topic}-{partition} is {part.isr}")
                elif check_isr and plog.config.min_insync_replicas > 1:
                    raise KafkaError(
                        ErrorCode.NOT_ENOUGH_REPLICAS,
                        f"min.insync.replicas={plog.config.min_insync_replicas} but this single node is the only "
                        "in-sync replica",
                    )
                info = append_to_log(plog, records, now_ms)
                response.base_offset = info.first_offset
                response.log_append_time = info.log_append_time
                response.log_start_offset = info.log_start_offset
                if group_commit is not None and group_commit.scheduled:
                    flush = group_commit.waiter(plog)
                    if flush is not None:
                        flushes.append((response, flush))
                if acks_all is not None and check_isr:
                    assert self._loop is not None
                    acks_all.append((response, self._led_partition(topic, partition).wait_for(
                        info.last_offset + 1, self._loop, plog.config.min_insync_replicas)))
            except Exception as exc:
                response.fail(*error_for(exc, f"produce to {topic}-{partition}"))
                self.produce_errors[response.error] += 1
                if plog is not None and response.error not in _NO_LOG_START_ERRORS:
                    response.log_start_offset = plog.log_start_offset  # as Kafka's processFailedRecord
            responses.append(response)
        if acks_all:
            return self._after_replication(responses, flushes, acks_all, timeout_ms)
        return self._after_flushes(responses, flushes) if flushes else responses

    def _led_partition(self, topic: str, partition: int) -> Partition:
        part = self.partitions.get((topic, partition))
        if part is None or not part.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{topic}-{partition} is not led by node {self.node_id}")
        return part

    async def _after_replication(self, responses: list[PartitionResponse],
                                 flushes: list[tuple[PartitionResponse, asyncio.Future[None]]],
                                 acks_all: list[tuple[PartitionResponse, asyncio.Future[ErrorCode]]],
                                 timeout_ms: int) -> list[PartitionResponse]:
        """acks=all: answers once the ISR has every partition's records (Kafka's DelayedProduce),
        REQUEST_TIMED_OUT for those still short after the request's timeout."""
        if flushes:
            await self._after_flushes(responses, flushes)
        await asyncio.wait([f for _, f in acks_all], timeout=max(timeout_ms, 0) / 1000)
        for response, future in acks_all:
            if not future.done():
                future.cancel()
                if response.error == ErrorCode.NONE:
                    response.fail(ErrorCode.REQUEST_TIMED_OUT, "the in-sync replicas did not confirm the records in time")
            elif future.result() != ErrorCode.NONE and response.error == ErrorCode.NONE:
                response.fail(future.result(), f"records appended but not replicated ({future.result().name})")
        return responses

    def append_to_log(self, plog: PartitionLog, records: memoryview, now_ms: int) -> LogAppendInfo:
        """One batch into a led log, waking the fetches waiting on it (also the coordinators'
        appends to their internal topics)."""
        info = plog.append(records, now_ms)
        if not info.duplicate:
            try:  # zero-cost in 3.11 when attached, unlike a .get() call
                self.traffic[plog].bytes_in += len(records)
            except KeyError:
                self._track(plog).bytes_in += len(records)
            self._appended(plog, len(records))
        return info

    def replication(self, plog: PartitionLog, timeout_ms: int) -> Awaitable[ErrorCode] | None:
        """acks=-1 for the coordinators' own appends to a led internal partition (Kafka appends
        offsets, group metadata and transaction state with required acks -1): resolves once the
        high watermark reaches the log end as of now (NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND
        when the ISR is then below min.insync.replicas), NOT_LEADER_OR_FOLLOWER if the
        leadership goes, REQUEST_TIMED_OUT after `timeout_ms`.  None: nothing to wait for (a
        single host, or already replicated)."""
        part = self.partitions.get((plog.topic, plog.partition))
        if part is None:
            return None
        if not part.is_leader:
            return _answered(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        assert self._loop is not None
        future = part.wait_for(plog.log_end_offset, self._loop, plog.config.min_insync_replicas)
        if future.done() and future.result() == ErrorCode.NONE:
            return None
        return _within(future, timeout_ms)

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
        follower = params.replica_id >= 0
        quota = self._leader_quota if follower else None
        now_ms = int(time.time() * 1000) if follower else 0
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
                if params.rack_id is None or follower or not self.partitions:
                    plog = self.leader_log(fp.topic, fp.partition, fp.current_leader_epoch)
                else:
                    plog, data.preferred_read_replica = self._consumer_log(fp, params.rack_id)
                if follower:  # a fetch offset past the log end is refused before it counts
                    if fp.fetch_offset > plog.log_end_offset:
                        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"follower fetch offset {fp.fetch_offset} is past "
                                         f"the log end {plog.log_end_offset} of {fp.topic}-{fp.partition}")
                    if previous is None:  # once per fetch: a re-read after a long poll is not a new position
                        self._follower_fetched(fp.topic, fp.partition, params.replica_id, fp.fetch_offset, now_ms)
                data.high_watermark = plog.high_watermark
                data.last_stable_offset = plog.last_stable_offset
                data.log_start_offset = plog.log_start_offset
                throttled = quota is not None and quota.is_throttled(fp.topic, fp.partition)
                if data.preferred_read_replica >= 0:
                    result.redirected = True  # no records: the consumer asks that replica (Kafka skips the read)
                elif (limit > 0 or min_one) and not (throttled and self._held_back((fp.topic, fp.partition),
                                                                                   params.replica_id)):
                    info = plog.read(fp.fetch_offset, max(limit, 0), min_one_message=min_one,
                                     isolation_level=params.isolation_level, to_log_end=follower)
                    sent = info.records.size if info.records is not None else 0
                    if info.records is not None and sent > 0:
                        data.records = info.records
                        if read_committed:
                            data.aborted_transactions = info.aborted_transactions or []
                        result.bytes_read += sent
                    sent_before = previous.partitions[i].records if previous is not None else None
                    if sent_before is not None:
                        sent -= sent_before.size  # a re-read replaces the first pass's
                    if sent:
                        self._track(plog).bytes_out += sent
                        if throttled and quota is not None:
                            quota.record(sent)  # as Kafka, counted for in-sync followers too
            except Exception as exc:
                # As Kafka: a failed read reports no offsets; a partition unknown to the metadata
                # is refused before the read, with an empty (not null) list of aborted transactions.
                code = error_for(exc, f"fetch from {fp.topic}-{fp.partition}")[0]
                data = FetchPartitionData(code, aborted_transactions=[] if code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                                          else None)
                self.fetch_errors[code] += 1
                result.any_error = True
            result.partitions.append(data)
        return result

    def _consumer_log(self, fp: FetchPartition, rack_id: str) -> tuple[PartitionLog, int]:
        """A consumer's fetch of Fetch v11+ in a cluster (KIP-392): on the leader, its log and
        the replica the consumer should read from instead (-1: here); on an in-sync follower,
        its own log, read up to the high watermark it learned from the leader."""
        part = self.partitions.get((fp.topic, fp.partition))
        if part is None or part.is_leader:
            plog = self.leader_log(fp.topic, fp.partition, fp.current_leader_epoch)
            return plog, self._preferred_read_replica(part, fp.fetch_offset, rack_id) if part is not None else -1
        # A follower out of the ISR (or without a leader: fenced, or mid-election) may lag
        # without bound: the consumer goes back to the leader, as after any leader change.
        if part.leader < 0 or self.node_id not in part.isr:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{fp.topic}-{fp.partition}: node {self.node_id} is not "
                             f"an in-sync follower (leader {part.leader}, isr {part.isr})")
        check_leader_epoch(fp.current_leader_epoch, part.leader_epoch)
        if not part.high_watermark_known:
            raise KafkaError(ErrorCode.OFFSET_NOT_AVAILABLE, f"{fp.topic}-{fp.partition}: the follower has not yet "
                             f"learned the high watermark of leader epoch {part.leader_epoch}")
        return part.log, -1

    def _preferred_read_replica(self, part: Partition, fetch_offset: int, rack_id: str) -> int:
        """Kafka's RackAwareReplicaSelector over the ISR: this leader when it is in the
        consumer's rack (or none is), else the in-sync follower there that has `fetch_offset`,
        the one furthest ahead (then the most recently caught up); -1 means the leader."""
        if not self.rack_aware_selection or not rack_id or self.metadata.brokers is None:
            return -1
        racks = {b["node_id"]: b["rack"] for b in self.metadata.brokers}  # live nodes only
        if racks.get(self.node_id) == rack_id:
            return -1
        candidates = [(state.log_end_offset, state.last_caught_up_ms, replica) for replica in part.isr
                      if replica != self.node_id and racks.get(replica) == rack_id
                      and (state := part.followers.get(replica)) is not None and state.log_end_offset >= fetch_offset]
        return max(candidates)[2] if candidates else -1

    def follower_high_watermark(self, plog: PartitionLog, high_watermark: int) -> None:
        """A follower's fetch answer carried the leader's high watermark: consumers reading from
        this follower (KIP-392) may read up to it, and their long polls wake."""
        key = (plog.topic, plog.partition)
        nbytes = plog.update_high_watermark(high_watermark)
        part = self.partitions.get(key)
        if part is not None and not part.is_leader:
            # Never moved down: a restarted follower's own (its log end) stays above the leader's
            # until that catches up, and records above the leader's are not committed yet.
            part.high_watermark_known = plog.high_watermark <= high_watermark
        if nbytes and self._purgatory is not None:
            self._purgatory.on_append(key, nbytes)

    def wait_for_data(self, params: FetchParams, keys: list[PartitionKey], needed: int,
                      changed: set[PartitionKey] | None = None) -> asyncio.Future[bool]:
        """Parks a fetch at once (call it right after the read that found too little: an append
        in between would not wake it) until `needed` more bytes it may read reach any of `keys`
        (True) or its max wait is up (False); the keys that changed meanwhile are added to
        `changed`."""
        assert self._purgatory is not None
        level = (LOG_END if params.replica_id >= 0 else LAST_STABLE if params.isolation_level == READ_COMMITTED
                 else HIGH_WATERMARK)
        quota = self._leader_quota
        if params.replica_id >= 0 and quota is not None:
            # A held-back partition's appends do not end the wait (Kafka's DelayedFetch skips them).
            keys = [k for k in keys if not (quota.is_throttled(*k) and self._held_back(k, params.replica_id))]
        return self._purgatory.wait(keys, needed, params.max_wait_ms, level, changed)

    def _held_back(self, key: PartitionKey, replica: int) -> bool:
        """A throttled partition's bytes wait while the leader throttle is exceeded and the
        follower is out of sync (Kafka's shouldLeaderThrottle)."""
        part = self.partitions.get(key)
        quota = self._leader_quota
        return part is not None and quota is not None and replica not in part.isr and quota.is_quota_exceeded()

    def waiting_fetches(self) -> int:
        """Fetches parked for data (Kafka's Fetch purgatory size)."""
        return self._purgatory.size() if self._purgatory is not None else 0

    def waiting_produces(self) -> int:
        """acks=all appends waiting for the ISR, one per partition of a request as Kafka's
        Produce purgatory size counts its watchers (the coordinators' own appends included)."""
        return sum(part.waiting() for part in self.partitions.values())

    # Events ------------------------------------------------------------------------------------
    def _appended(self, plog: PartitionLog, nbytes: int) -> None:
        purgatory = self._purgatory
        if purgatory is not None:
            if not self.partitions:
                if purgatory.parked:  # (no fetch parked anywhere: no key to build, no calls)
                    purgatory.on_append((plog.topic, plog.partition), nbytes)  # a single host: appended is committed
            else:
                self._replicated_append(purgatory, plog, nbytes)

    def _replicated_append(self, purgatory: FetchPurgatory, plog: PartitionLog, nbytes: int) -> None:
        """Followers may fetch the new bytes; an ISR of this node alone commits them at once."""
        key = (plog.topic, plog.partition)
        purgatory.on_log_end(key, nbytes)
        part = self.partitions.get(key)
        if part is not None:
            self._maybe_advance_hw(part)

    # Replication (leader side) -----------------------------------------------------------------
    def _follower_fetched(self, topic: str, partition: int, replica: int, fetch_offset: int, now_ms: int) -> None:
        """A follower's fetch: its position may move the high watermark and bring it into the ISR."""
        part = self.partitions.get((topic, partition))
        if part is None:
            return
        part.update_follower(replica, fetch_offset, now_ms)
        self._maybe_advance_hw(part)
        if part.expand_candidate(replica) and not part.isr_change_pending:
            self._change_isr(part, part.isr + [replica], f"node {replica} caught up")

    def _maybe_advance_hw(self, part: Partition) -> None:
        plog = part.log
        nbytes = plog.update_high_watermark(part.high_watermark_target())
        if nbytes and self._purgatory is not None:
            self._purgatory.on_append((plog.topic, plog.partition), nbytes)
        part.complete_waiters(plog.config.min_insync_replicas)

    def _change_isr(self, part: Partition, isr: list[int], why: str) -> None:
        """Writes a new ISR (one change in flight per partition); applied here once written."""
        assert self._alter_isr is not None
        part.isr_change_pending = True
        asyncio.ensure_future(self._write_isr(part, isr, why))

    async def _write_isr(self, part: Partition, isr: list[int], why: str) -> None:
        plog, epoch = part.log, part.leader_epoch
        try:
            assert self._alter_isr is not None
            version = await self._alter_isr(plog.topic, plog.partition, self.node_id, epoch, isr, part.version)
            if part.is_leader and part.leader_epoch == epoch and version >= part.version:
                part.isr, part.version = isr, version
            log.info("%s-%d: isr %s (%s)", plog.topic, plog.partition, isr, why)
        except KafkaError as exc:
            log.warning("%s-%d: isr change to %s refused: %s", plog.topic, plog.partition, isr, exc.message)
        finally:
            part.isr_change_pending = False
        if part.is_leader:
            self._maybe_advance_hw(part)

    async def _shrink_isrs(self) -> None:
        """Every half replica.lag.time.max.ms, drops followers that lag longer from the ISRs led here."""
        while True:
            await asyncio.sleep(self._max_lag_ms / 2000)
            now_ms = int(time.time() * 1000)
            for part in list(self.partitions.values()):
                if not part.is_leader or part.isr_change_pending:
                    continue
                lagging = part.lagging(now_ms, self._max_lag_ms)
                if lagging:
                    self._change_isr(part, [r for r in part.isr if r not in lagging],
                                     f"node(s) {lagging} not caught up for {self._max_lag_ms} ms")

    def _on_stable_advance(self, plog: PartitionLog, nbytes: int) -> None:
        """A log's last stable offset moved: wake read_committed long polls on it."""
        if self._purgatory is not None and self._purgatory.parked:
            self._purgatory.on_stable((plog.topic, plog.partition), nbytes)

    def _flush_due(self, plog: PartitionLog) -> None:
        assert self._group_commit is not None
        self._group_commit.schedule(plog)

