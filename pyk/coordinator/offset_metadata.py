"""OffsetMetadataManager: the groups' committed offsets (Kafka's OffsetMetadataManager).

OffsetCommit, OffsetFetch, OffsetDelete, TxnOffsetCommit and the offsets' retention, over the
groups of one GroupCoordinator; the records go to `__consumer_offsets` (offsets.py):
  * OffsetCommit / OffsetFetch, fenced by generation and member id for classic groups, by member
    epoch for KIP-848 consumer groups (v9+, Kafka's ConsumerGroup.validateOffsetCommit/Fetch);
  * TxnOffsetCommit (KIP-98/KIP-447): offsets committed inside a producer's transaction are
    written as its transactional batch and stay pending (invisible to OffsetFetch, which
    answers UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets) until the
    transaction's marker commits or drops them (`complete_txn`, called by WriteTxnMarkers);
  * OffsetDelete;
  * offset retention (offsets.retention.minutes, KIP-211: an empty group's offsets expire once
    it has been empty that long; a stable consumer group's offsets of topics it no longer
    subscribes to expire that long after their last commit; a group with no offsets left is
    deleted), swept every offsets.retention.check.interval.ms.

Owned by the GroupCoordinator, on its event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pyk.coordinator.api import (
    OffsetCommitPartition,
    OffsetFetchPartition,
    OffsetFetchResult,
    PartitionResult,
    TopicPartition,
)
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE
from pyk.coordinator.group import UNKNOWN_MEMBER_ID, Group, GroupState
from pyk.coordinator.offsets import OFFSETS_TOPIC
from pyk.coordinator.records import (
    OffsetAndMetadata,
    encode_group_metadata_key,
    encode_offset_commit_key,
    encode_offset_commit_value,
)
from pyk.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from pyk.coordinator.coordinator import GroupCoordinator
    from pyk.server.metadata_store import TopicInfo

log = logging.getLogger("pyk.coordinator")

# OffsetDelete's answer: the group's error, and each partition's (none with a group error).
OffsetDeleteResult = tuple[ErrorCode, list[PartitionResult]]


class OffsetMetadataManager:
    """The committed offsets of one GroupCoordinator's groups (see the module docstring).

    Lifecycle: made by its GroupCoordinator, whose `groups`, clock, event loop and
    `__consumer_offsets` partitions it shares; `start` (from the coordinator's, after the load)
    schedules the retention sweep, `stop` cancels it.  Offsets live in each Group
    (`offsets`, `pending_txn_offsets`), so that a group and its offsets are loaded, expired and
    deleted together.
    """

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.groups = coordinator.groups
        self.topic = coordinator.topic
        self.host = coordinator.host
        self.clock_ms = coordinator.clock_ms
        config = coordinator.host.config
        self.retention_ms: int = config["offsets.retention.minutes"] * 60_000
        self.retention_check_interval_ms: int = config["offsets.retention.check.interval.ms"]
        self.max_metadata_bytes: int = config["offset.metadata.max.bytes"]
        self._retention_timer: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.coordinator.loop

    def start(self) -> None:
        self._schedule_retention()

    def stop(self) -> None:
        if self._retention_timer is not None:
            self._retention_timer.cancel()
            self._retention_timer = None

    # OffsetCommit / OffsetFetch ------------------------------------------------------------------
    def commit_offsets(self, group_id: str, member_id: str, generation_id: int, group_instance_id: str | None,
                       partitions: Sequence[OffsetCommitPartition], api_version: int,
                       retention_time_ms: int = -1) -> list[PartitionResult] | Awaitable[list[PartitionResult]]:
        """OffsetCommit: an error code per partition, in request order; in a cluster, once the
        ISR has the offsets (an awaitable; see `_once_replicated`).

        `generation_id` is the member's generation (classic) or member epoch (KIP-848), -1 for a
        commit from outside the group; `api_version` fences KIP-848 members below v9;
        `retention_time_ms` (v2-v4) gives the offsets their own expiry, -1 none."""
        try:
            partition = self.coordinator.check_local(group_id)
            group = self.groups.get(group_id)
            if group is None:
                if generation_id >= 0 or member_id != UNKNOWN_MEMBER_ID or group_instance_id is not None:
                    # A member of a generation this coordinator does not know (it lost the group).
                    raise KafkaError(ErrorCode.ILLEGAL_GENERATION, f"group {group_id!r} does not exist")
                group = Group(group_id, partition, self.clock_ms())
            else:
                self._validate_offset_commit(group, member_id, group_instance_id, generation_id, api_version)
        except KafkaError as exc:
            return _partition_errors(partitions, exc.code)
        now = self.clock_ms()

        def value_of(part: OffsetCommitPartition) -> OffsetAndMetadata:
            commit_time = part.commit_timestamp if part.commit_timestamp >= 0 else now
            return OffsetAndMetadata(part.committed_offset, part.committed_leader_epoch, part.committed_metadata,
                                     commit_time, now + retention_time_ms if retention_time_ms >= 0 else -1)

        results, records, pending = self._offset_entries(group_id, partitions, value_of)
        if records:
            try:
                self.topic.append(partition, records)
            except KafkaError as exc:
                code = ErrorCode.INVALID_COMMIT_OFFSET_SIZE if exc.code == ErrorCode.UNKNOWN_SERVER_ERROR else exc.code
                return _with_error(results, pending, code)
            member = group.members.get(member_id)
            if member is not None:  # a commit is as good as a heartbeat (Kafka does the same)
                self.coordinator.classic.schedule_heartbeat(group, member, member.session_timeout_ms)

            def apply() -> None:
                target = self.groups.setdefault(group_id, group)
                for index, value in pending:
                    target.offsets[partitions[index].topic, partitions[index].partition] = value

            waiting = self.coordinator.replication(group_id)
            if waiting is not None:
                return _once_replicated(waiting, results, pending, apply)
            apply()
        return results

    def _offset_entries(self, group_id: str, partitions: Sequence[OffsetCommitPartition],
                        value_of: Callable[[OffsetCommitPartition], OffsetAndMetadata],
                        ) -> tuple[list[PartitionResult], list[tuple[bytes, bytes | None]],
                                   list[tuple[int, OffsetAndMetadata]]]:
        """The per-partition half shared by OffsetCommit and TxnOffsetCommit: the results (an
        error for unknown partitions or oversized metadata), the offset records to write, and
        (index in `partitions`, value) of each one written."""
        results: list[PartitionResult] = []
        records: list[tuple[bytes, bytes | None]] = []
        pending: list[tuple[int, OffsetAndMetadata]] = []
        infos: dict[str, TopicInfo | None] = {}
        for index, part in enumerate(partitions):
            if part.topic not in infos:
                infos[part.topic] = self.host.topic(part.topic)
            info = infos[part.topic]
            code = ErrorCode.NONE
            if info is None or not 0 <= part.partition < info.partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif len(part.committed_metadata.encode()) > self.max_metadata_bytes:
                code = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                value = value_of(part)
                records.append((encode_offset_commit_key(group_id, part.topic, part.partition),
                                encode_offset_commit_value(value)))
                pending.append((index, value))
            results.append(PartitionResult(part.topic, part.partition, code))
        return results, records, pending

    @staticmethod
    def _validate_offset_commit(group: Group, member_id: str, instance_id: str | None, generation: int,
                                version: int | None = None) -> None:
        """Kafka's validateOffsetCommit: members commit with their generation; anyone may commit
        without one (generation -1, no member id) while the group has no members.  `version` is
        the OffsetCommit version, None for a TxnOffsetCommit."""
        if group.is_(GroupState.DEAD):
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "group is being deleted")
        if group.consumer is not None and (group.consumer.members or member_id != UNKNOWN_MEMBER_ID):
            # A consumer-protocol (KIP-848) member commits with its member epoch in the
            # generation field (ConsumerGroup.validateOffsetCommit): an unknown member is
            # UNKNOWN_MEMBER_ID, any other epoch than its current one STALE_MEMBER_EPOCH (it
            # retries once its heartbeat has brought the new epoch), and a plain commit older
            # than v9 UNSUPPORTED_VERSION (v9 is the first a KIP-848 member may use).
            if generation < 0 and not group.consumer.members:
                return
            cmember = group.consumer.members.get(member_id)
            if cmember is None:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id!r} is not in the group")
            if version is not None and version < 9:
                raise KafkaError(ErrorCode.UNSUPPORTED_VERSION,
                                 f"OffsetCommit v{version}: members of consumer-protocol groups need v9 or above")
            if generation != cmember.epoch:
                raise KafkaError(ErrorCode.STALE_MEMBER_EPOCH,
                                 f"commit with epoch {generation}, the member is at {cmember.epoch}")
            return
        if generation >= 0 or member_id != UNKNOWN_MEMBER_ID or instance_id is not None:
            group.validate_member(member_id, instance_id)
            if generation != group.generation:
                raise KafkaError(ErrorCode.ILLEGAL_GENERATION,
                                 f"commit for generation {generation}, the group is at {group.generation}")
        elif not group.is_(GroupState.EMPTY):
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, "only members may commit while the group has members")
        if group.is_(GroupState.COMPLETING_REBALANCE):
            raise KafkaError(ErrorCode.REBALANCE_IN_PROGRESS, "the group is waiting for its assignment")

    def fetch_offsets(self, group_id: str, partitions: Sequence[TopicPartition] | None, require_stable: bool = False,
                      member_id: str | None = None, member_epoch: int = -1) -> OffsetFetchResult:
        """OffsetFetch for one group; `partitions` None means every committed one (by topic,
        then partition).

        A partition with transactional offsets awaiting their marker reports its last committed
        offset, or UNSTABLE_OFFSET_COMMIT when the client asks for stable offsets only (KIP-447:
        the consumer retries until the transaction is over).  A member of a consumer-protocol
        group names itself (v9+) and is checked as for a commit (Kafka's validateOffsetFetch);
        no member id and epoch -1 is an admin client or a classic consumer: not checked."""
        try:
            self.coordinator.check_local(group_id)
            group = self.groups.get(group_id)
            if group is not None and group.consumer is not None and (member_id or member_epoch >= 0):
                cmember = group.consumer.members.get(member_id or "")
                if cmember is None:
                    raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id!r} is not in the group")
                if member_epoch != cmember.epoch:
                    raise KafkaError(ErrorCode.STALE_MEMBER_EPOCH,
                                     f"fetch with epoch {member_epoch}, the member is at {cmember.epoch}")
        except KafkaError as exc:
            return OffsetFetchResult(exc.code, [])
        committed = group.offsets if group is not None else {}
        unstable: set[TopicPartition] = set()
        if require_stable and group is not None:
            for pending in group.pending_txn_offsets.values():
                unstable.update(pending)
        if partitions is None:
            partitions = sorted(committed)
        out = []
        for tp in partitions:
            value = committed.get(tp)
            if tp in unstable:
                out.append(OffsetFetchPartition(tp[0], tp[1], error_code=ErrorCode.UNSTABLE_OFFSET_COMMIT))
            elif value is None:
                out.append(OffsetFetchPartition(tp[0], tp[1]))
            else:
                out.append(OffsetFetchPartition(tp[0], tp[1], value.offset, value.leader_epoch, value.metadata))
        return OffsetFetchResult(ErrorCode.NONE, out)

    # TxnOffsetCommit / transaction markers -------------------------------------------------------
    async def txn_commit_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str,
                                 member_id: str, generation_id: int, group_instance_id: str | None,
                                 partitions: Sequence[OffsetCommitPartition]) -> list[PartitionResult]:
        """TxnOffsetCommit: an error code per partition, in request order.

        Checks, in Kafka's order: this node coordinates the group; the group's offsets partition
        is part of the producer's ongoing transaction (AddOffsetsToTxn came first; KIP-890's
        verification, asked of the transaction coordinator, which also fences a stale epoch);
        the member's generation when it names one (v3+, KIP-447).  The offsets are then written
        as a transactional batch of the producer and kept pending until its marker."""
        try:
            partition = self.coordinator.check_local(group_id)
            assert self.coordinator.transactions is not None
            code = await self.coordinator.transactions.verify_partition(transactional_id, producer_id, producer_epoch,
                                                                        OFFSETS_TOPIC, partition)
            if code != ErrorCode.NONE:
                raise KafkaError(code, f"{OFFSETS_TOPIC}-{partition} is not in transaction "
                                       f"{transactional_id!r} (AddOffsetsToTxn first)")
            group = self.groups.get(group_id)
            if group is None:
                group = Group(group_id, partition, self.clock_ms())
            if member_id != UNKNOWN_MEMBER_ID or generation_id >= 0 or group_instance_id is not None:
                self._validate_offset_commit(group, member_id, group_instance_id, generation_id)
        except KafkaError as exc:
            return _partition_errors(partitions, exc.code)
        now = self.clock_ms()
        results, records, pending = self._offset_entries(
            group_id, partitions,
            lambda part: OffsetAndMetadata(part.committed_offset, part.committed_leader_epoch, part.committed_metadata,
                                           now))
        if records:
            try:
                self.topic.append(partition, records, (producer_id, producer_epoch))
            except KafkaError as exc:
                return _with_error(results, pending, exc.code)
            waiting = self.coordinator.replication(group_id)
            code = ErrorCode.NONE if waiting is None else await waiting  # a cluster: once the ISR has them
            if code != ErrorCode.NONE:
                return _with_error(results, pending, code)
            txn_offsets = self.groups.setdefault(group_id, group).pending_txn_offsets.setdefault(producer_id, {})
            for index, value in pending:
                txn_offsets[partitions[index].topic, partitions[index].partition] = value
        return results

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """A transaction marker was written to `__consumer_offsets`-`partition`: the producer's
        pending offsets of the groups in that partition become committed (or are dropped)."""
        for group in list(self.groups.values()):
            if group.partition != partition:
                continue
            done = group.pending_txn_offsets.pop(producer_id, None)
            if done and commit:
                group.offsets.update(done)
            self.coordinator.forget_if_unused(group)

    # OffsetDelete --------------------------------------------------------------------------------
    def delete_offsets(self, group_id: str,
                       partitions: Sequence[TopicPartition]) -> OffsetDeleteResult | Awaitable[OffsetDeleteResult]:
        """OffsetDelete: an error per partition in request order.  In a cluster the offsets are gone once the ISR has their tombstones (an
        awaitable), as Kafka applies them; else the mapped group error and they stay."""
        try:
            partition = self.coordinator.check_local(group_id)
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id!r} does not exist")
            if not group.is_(GroupState.EMPTY) and group.protocol_type != PROTOCOL_TYPE:
                raise KafkaError(ErrorCode.NON_EMPTY_GROUP, "only consumer groups may delete offsets while active")
        except KafkaError as exc:
            return exc.code, []
        results = []
        doomed: list[TopicPartition] = []
        for name, index in partitions:
            info = self.host.topic(name)
            code = ErrorCode.NONE
            if info is None or not 0 <= index < info.partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif not group.is_(GroupState.EMPTY) and group.is_subscribed(name):
                code = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            elif (name, index) in group.offsets:
                doomed.append((name, index))
            results.append(PartitionResult(name, index, code))
        if doomed:
            try:
                self.topic.append(partition, [(encode_offset_commit_key(group_id, t, i), None) for t, i in doomed])
            except KafkaError as exc:
                return exc.code, []

            def apply() -> OffsetDeleteResult:
                for tp in doomed:
                    group.offsets.pop(tp, None)
                return ErrorCode.NONE, results

            waiting = self.coordinator.replication(group_id)
            if waiting is not None:
                return _deleted_once_replicated(waiting, apply)
            return apply()
        return ErrorCode.NONE, results

    # Offset retention ----------------------------------------------------------------------------
    def _schedule_retention(self) -> None:
        assert self.loop is not None
        self._retention_timer = self.loop.call_later(self.retention_check_interval_ms / 1000, self._run_retention)

    def _run_retention(self) -> None:
        try:
            self.expire_offsets(self.clock_ms())
        except Exception:
            log.exception("offset retention sweep failed; retrying at the next interval")
        self._schedule_retention()

    def expire_offsets(self, now_ms: int) -> int:
        """Removes expired offsets (tombstones) and deletes Empty groups left without offsets;
        returns how many offsets expired."""
        expired_total = 0
        for group in list(self.groups.values()):
            expired = self._expired_offsets(group, now_ms)
            records: list[tuple[bytes, bytes | None]] = [
                (encode_offset_commit_key(group.group_id, t, i), None) for t, i in expired
            ]
            dead = (group.is_(GroupState.EMPTY) and group.is_empty
                    and len(expired) == len(group.offsets))
            if dead:
                records.append((encode_group_metadata_key(group.group_id), None))
                records += self.coordinator.consumer.tombstones(group)
            if not records:
                continue
            try:
                self.topic.append(group.partition, records)
            except KafkaError as exc:
                log.warning("group %s: expiring offsets failed: %s", group.group_id, exc)
                continue
            for tp in expired:
                del group.offsets[tp]
            expired_total += len(expired)
            if dead:
                group.transition(GroupState.DEAD, now_ms)
                self.coordinator.classic.cancel_group_timers(group)
                del self.groups[group.group_id]
                log.info("group %s removed: empty, no offsets left (%d expired)", group.group_id, len(expired))
            elif expired:
                log.info("group %s: %d offsets expired", group.group_id, len(expired))
        return expired_total

    def _expired_offsets(self, group: Group, now_ms: int) -> list[tuple[str, int]]:
        """KIP-211's rules (see the module docstring); explicit expire timestamps (OffsetCommit
        v2-v4 retention_time_ms) expire on their own schedule."""
        subscribed: set[str]
        if group.consumer is not None and group.consumer.members:
            since_empty = -1
            subscribed = group.consumer.subscribed_topics()
        elif group.protocol_type is not None and group.is_(GroupState.EMPTY):
            since_empty = group.state_timestamp_ms
            subscribed = set()
        elif group.protocol_type == PROTOCOL_TYPE and group.is_(GroupState.STABLE) and group.subscribed_topics is not None:
            since_empty = -1
            subscribed = group.subscribed_topics
        elif group.protocol_type is None:
            since_empty = -1
            subscribed = set()
        else:
            return []
        out = []
        for tp, value in group.offsets.items():
            if tp[0] in subscribed:
                continue
            if value.expire_timestamp >= 0:
                if now_ms >= value.expire_timestamp:
                    out.append(tp)
            elif now_ms - (since_empty if since_empty >= 0 else value.commit_timestamp) >= self.retention_ms:
                out.append(tp)
        return out


def _partition_errors(partitions: Sequence[OffsetCommitPartition], code: ErrorCode) -> list[PartitionResult]:
    return [PartitionResult(p.topic, p.partition, code) for p in partitions]


async def _once_replicated(waiting: Awaitable[ErrorCode], results: list[PartitionResult],
                           written: list[tuple[int, OffsetAndMetadata]],
                           apply: Callable[[], None]) -> list[PartitionResult]:
    """Kafka's appendForGroup with acks=-1 (offsets.commit.timeout.ms): the offsets become the
    group's only once the ISR has them; else the partitions written get the mapped error
    (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR) and the client commits again."""
    code = await waiting
    if code != ErrorCode.NONE:
        return _with_error(results, written, code)
    apply()
    return results


async def _deleted_once_replicated(waiting: Awaitable[ErrorCode],
                                   apply: Callable[[], OffsetDeleteResult]) -> OffsetDeleteResult:
    code = await waiting
    return apply() if code == ErrorCode.NONE else (code, [])


def _with_error(results: list[PartitionResult], written: list[tuple[int, OffsetAndMetadata]],
                code: ErrorCode) -> list[PartitionResult]:
    """`results` with `code` for the partitions whose records failed to be written."""
    failed = {index for index, _ in written}
    return [replace(r, error_code=code) if i in failed else r for i, r in enumerate(results)]
