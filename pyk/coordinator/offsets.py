"""OffsetManager: the group coordinator's storage, the compacted internal topic `__consumer_offsets`.

Kafka's layout, so that its tools and its clients' expectations carry over:
  * the topic has offsets.topic.num.partitions partitions (default 50), cleanup.policy=compact,
    segment.bytes=offsets.topic.segment.bytes, compression.type=producer (the coordinator's
    batches are kept as written: uncompressed);
  * group G lives in partition abs(javaHashCode(G)) % partitions (Kafka's
    GroupMetadataManager.partitionFor with Utils.abs), so every Kafka-aware tool computes the
    same partition; its coordinator is that partition's leader;
  * records are keyed so that compaction keeps exactly the current state: one key per
    (group, topic, partition) offset and one per group's metadata (see records.py).

Durability: a commit is answered after its batch is written to the partition's active segment
(the page cache) and, in a cluster, after the partition's ISR has it (acks=-1, as Kafka's
coordinators append; `replication`); fsync follows the topic's flush policy.  A kill -9 of the
broker, or of the coordinator's host in a cluster, therefore keeps every acknowledged commit; a
power loss keeps what was flushed.

Transactional offsets (TxnOffsetCommit, KIP-98): written as a transactional batch of the
committing producer (its id and epoch, so the log fences a zombie's commit), they stay pending
until the transaction's marker reaches this partition: a commit marker makes them the group's
committed offsets, an abort marker drops them.

Loading: at start-up every local partition is read from its log start offset to its end and
replayed in offset order (a later record for a key replaces an earlier one, a null value deletes
it; a transactional batch's offsets wait for their producer's marker, as above); the result is
the groups' last written metadata (classic GroupMetadataValue, or a KIP-848 group's records) and
committed offsets, and the offsets of transactions still open.  Record types pyk does not own
(share and streams groups) are skipped.  The topic is created lazily, by the first FindCoordinator for a group, as Kafka does.

Owned by the event loop of the process holding the partitions (one process today; with shards,
each shard's coordinator manages the partitions placed on it).  Not thread-safe.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyk.coordinator.batch import build_batch, replay
from pyk.coordinator.records import (
    ConsumerGroupKey,
    ConsumerGroupValue,
    GroupMetadataKey,
    GroupMetadataValue,
    OffsetAndMetadata,
    OffsetCommitKey,
    decode_consumer_group_value,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
)
from pyk.errors import ErrorCode, KafkaError, ProtocolViolation

if TYPE_CHECKING:
    from pyk.coordinator.host import CoordinatorHost

log = logging.getLogger("pyk.coordinator")

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
_SEQUENCE_MAX = 2**31 - 1

# Append failures as the members are told about them (Kafka's
# appendGroupMetadataErrorToResponseError): the coordinator moved or is not ready -> find it
# again; a record set that cannot be written -> a server error, not something to retry.
_APPEND_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.INVALID_FETCH_SIZE: ErrorCode.UNKNOWN_SERVER_ERROR,
}


def java_string_hash(text: str) -> int:
    """java.lang.String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, as int32."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


@functools.lru_cache(maxsize=65536)  # asked on every group request; group ids repeat
def partition_for(key: str, partitions: int) -> int:
    """Kafka's Utils.abs(key.hashCode()) % partitions (Utils.abs maps Integer.MIN_VALUE to 0)."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


@dataclass
class LoadedPartition:
    """What one partition of `__consumer_offsets` holds after replay."""

    groups: dict[str, GroupMetadataValue] = field(default_factory=dict)
    offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = field(default_factory=dict)
    # producer id -> group -> offsets of a transaction with no marker yet
    pending: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]] = field(default_factory=dict)
    # group -> its KIP-848 consumer-group records (consumer_group_records.restore_group rebuilds it)
    consumer_groups: dict[str, dict[ConsumerGroupKey, ConsumerGroupValue]] = field(default_factory=dict)
    records: int = 0


class CoordinatorTopic:
    """A coordinator's compacted internal topic (`__consumer_offsets`, `__transaction_state`):
    its lazy creation, placement of keys on partitions, and appends to the local partitions.

    It reaches its node through a CoordinatorHost.  `partitions_key` / `segment_key` /
    `timeout_key` name the broker keys giving its partition count, segment size and how long
    its writes wait for the ISR.
    """

    def __init__(self, host: CoordinatorHost, clock_ms: Callable[[], int], topic: str, partitions_key: str,
                 segment_key: str, timeout_key: str) -> None:
        self.host = host
        self.clock_ms = clock_ms
        self.topic = topic
        self.partitions_key = partitions_key
        self.segment_key = segment_key
        self.timeout_key = timeout_key
        self._creating: asyncio.Future[None] | None = None

    # Topic -------------------------------------------------------------------------------------
    @property
    def num_partitions(self) -> int:
        """The topic's partition count once it exists (it wins over a changed config, as in Kafka)."""
        info = self.host.topic(self.topic)
        return info.partitions if info is not None else self.host.config[self.partitions_key]

    def partition_for(self, key: str) -> int:
        return partition_for(key, self.num_partitions)

    def topic_exists(self) -> bool:
        return self.host.topic(self.topic) is not None

    def topic_configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "compact",
            "compression.type": "producer",
            "segment.bytes": str(self.host.config[self.segment_key]),
        }

    async def ensure_topic(self) -> None:
        """Creates the topic if it does not exist yet (once, however many ask at once)."""
        if self.topic_exists():
            return
        if self._creating is None:
            self._creating = asyncio.ensure_future(self._create())
        try:
            await asyncio.shield(self._creating)
        finally:
            if self._creating is not None and self._creating.done():
                self._creating = None

    async def _create(self) -> None:
        partitions = self.host.config[self.partitions_key]
        try:
            await self.host.create_topic(self.topic, partitions, self.topic_configs())
        except KafkaError as exc:
            if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created %s with %d partitions", self.topic, partitions)

    def log_for(self, partition: int) -> Any:
        """The local log of `partition`, or None when another process leads it."""
        return self.host.local_log(self.topic, partition)

    def local_partitions(self) -> list[int]:
        if not self.topic_exists():
            return []
        return [p for p in range(self.num_partitions) if self.log_for(p) is not None]

    # Writing -----------------------------------------------------------------------------------
    def append(self, partition: int, records: list[tuple[bytes, bytes | None]],
               producer: tuple[int, int] | None = None) -> None:
        """Writes `records` as one batch (a transactional one of `producer` = (id, epoch) when
        given); raises KafkaError with the code the coordinator's clients should see."""
        plog = self.log_for(partition)
        if plog is None:
            raise KafkaError(ErrorCode.NOT_COORDINATOR, f"{self.topic}-{partition} is not led by this process")
        if producer is None:
            batch = build_batch(records, self.clock_ms())
        else:
            pid, epoch = producer
            batch = build_batch(records, self.clock_ms(), pid, epoch, _next_sequence(plog, pid, epoch))
        try:
            self.host.replicas.append_to_log(plog, memoryview(batch), self.clock_ms())
        except KafkaError as exc:
            code = _APPEND_ERRORS.get(exc.code, exc.code)
            raise KafkaError(code, f"writing to {self.topic}-{partition}: {exc.message or exc.code.name}") from exc
        except OSError as exc:
            log.error("writing to %s-%d failed: %s", self.topic, partition, exc)
            raise KafkaError(ErrorCode.NOT_COORDINATOR, f"storage error on {self.topic}-{partition}: {exc}") from exc

    def replication(self, partition: int) -> Awaitable[ErrorCode] | None:
        """The wait for the ISR to have everything appended to `partition` so far (Kafka's
        coordinators append with acks=-1): the code the coordinator's clients should see once
        it ends (NONE: replicated), None when nothing waits (a single host: the leader is the
        whole ISR)."""
        plog = self.log_for(partition)
        if plog is None:
            return _answered(ErrorCode.NOT_COORDINATOR)
        waiting = self.host.replicas.replication(plog, self.host.config[self.timeout_key])
        return None if waiting is None else _mapped(waiting)


async def _answered(code: ErrorCode) -> ErrorCode:
    return code


async def _mapped(waiting: Awaitable[ErrorCode]) -> ErrorCode:
    code = await waiting
    return _APPEND_ERRORS.get(code, code)


class OffsetManager(CoordinatorTopic):
    """Reads and writes the group coordinator's records in the local partitions of `__consumer_offsets`.

    Lifecycle: built with its CoordinatorHost; `load_partition` at start-up for each local partition;
    `append` for every state change afterwards.
    """

    def __init__(self, host: CoordinatorHost, clock_ms: Callable[[], int]) -> None:
        super().__init__(host, clock_ms, OFFSETS_TOPIC, "offsets.topic.num.partitions", "offsets.topic.segment.bytes",
                         "offsets.commit.timeout.ms")

    # Loading -----------------------------------------------------------------------------------
    def load_partition(self, partition: int) -> LoadedPartition:
        """Replays one local partition from its log start offset to its end."""
        plog = self.log_for(partition)
        loaded = LoadedPartition()
        if plog is None:
            return loaded
        for batch in replay(plog, f"{OFFSETS_TOPIC}-{partition}"):
            if batch.commit is not None:  # a transaction marker: its offsets become committed or vanish
                done = loaded.pending.pop(batch.producer_id, {})
                if batch.commit:
                    for group_id, group_offsets in done.items():
                        loaded.offsets.setdefault(group_id, {}).update(group_offsets)
                continue
            if batch.transactional:
                for record_offset, key, value in batch.records:
                    self._replay_pending(loaded, batch.producer_id, partition, record_offset, key, value)
                continue
            for record_offset, key, value in batch.records:
                self._replay(loaded, partition, record_offset, key, value)
        return loaded

    @staticmethod
    def _replay_pending(loaded: LoadedPartition, producer_id: int, partition: int, offset: int, key: bytes | None,
                        value: bytes | None) -> None:
        try:
            decoded = decode_key(key) if key is not None else None
            if isinstance(decoded, OffsetCommitKey) and value is not None:
                group_offsets = loaded.pending.setdefault(producer_id, {}).setdefault(decoded.group, {})
                group_offsets[(decoded.topic, decoded.partition)] = decode_offset_commit_value(value)
                loaded.records += 1
        except ProtocolViolation as exc:
            log.error("%s-%d offset %d: undecodable record skipped: %s", OFFSETS_TOPIC, partition, offset, exc)

    def _replay(self, loaded: LoadedPartition, partition: int, offset: int, key: bytes | None,
                value: bytes | None) -> None:
        if key is None:
            log.warning("%s-%d offset %d: record without a key skipped", OFFSETS_TOPIC, partition, offset)
            return
        try:
            decoded = decode_key(key)
            if isinstance(decoded, OffsetCommitKey):
                tp = (decoded.topic, decoded.partition)
                if value is not None:
                    loaded.offsets.setdefault(decoded.group, {})[tp] = decode_offset_commit_value(value)
                elif decoded.group in loaded.offsets:
                    group_offsets = loaded.offsets[decoded.group]
                    group_offsets.pop(tp, None)
                    if not group_offsets:
                        del loaded.offsets[decoded.group]
            elif isinstance(decoded, GroupMetadataKey):
                if value is None:  # its offsets carry their own tombstones (DeleteGroups writes both)
                    loaded.groups.pop(decoded.group, None)
                else:
                    loaded.groups[decoded.group] = decode_group_metadata_value(value)
            elif isinstance(decoded, ConsumerGroupKey):
                group_records = loaded.consumer_groups.setdefault(decoded.group, {})
                if value is not None:
                    group_records[decoded] = decode_consumer_group_value(decoded.type, value)
                else:
                    group_records.pop(decoded, None)
                    if not group_records:
                        del loaded.consumer_groups[decoded.group]
            loaded.records += 1
        except ProtocolViolation as exc:
            # A record we cannot read is skipped, not fatal: the rest of the partition's groups
            # still load (Kafka fails the whole partition; one bad record should not cost all).
            log.error("%s-%d offset %d: undecodable record skipped: %s", OFFSETS_TOPIC, partition, offset, exc)


def _next_sequence(plog: Any, producer_id: int, epoch: int) -> int:
    """The sequence the producer's next batch in `plog` must carry: the coordinator writes on the
    producer's behalf (Kafka appends these with origin Coordinator, exempt from the check), so it
    continues the producer's own numbering in this partition."""
    entry = plog.producer_state.producers.get(producer_id)
    if entry is None or entry.epoch != epoch or not entry.batches:
        return 0
    last = entry.batches[-1][1]
    return 0 if last == _SEQUENCE_MAX else last + 1
