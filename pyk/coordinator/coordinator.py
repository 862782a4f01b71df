"""GroupCoordinator: the consumer groups this process hosts, classic and KIP-848.

A group is hosted by the process that leads its `__consumer_offsets` partition (see offsets.py);
every other process answers its requests with NOT_COORDINATOR and FindCoordinator names the
right node.  On one process that is every group; with one process per core (issue 4) each
shard runs one GroupCoordinator over the partitions placed on it, and no group ever spans two.

Split along Kafka's lines (its GroupCoordinatorService over GroupMetadataManager and
OffsetMetadataManager), each part a module:
  * this module: placement of groups on `__consumer_offsets` partitions, the start-up load of
    the local partitions, the group table (`groups`), and the group-level admin APIs
    (FindCoordinator, ListGroups, DescribeGroups, ConsumerGroupDescribe, DeleteGroups);
  * classic.py (`classic`): the classic protocol, JoinGroup / SyncGroup / Heartbeat /
    LeaveGroup, its rebalance state machine's driver and timers;
  * consumer.py (`consumer`): the consumer protocol of KIP-848, ConsumerGroupHeartbeat, its
    members' timers and the persistence of its records;
  * offset_metadata.py (`offsets`): OffsetCommit / OffsetFetch / OffsetDelete /
    TxnOffsetCommit and offset retention.
The parts share this object's group table, clock, event loop and storage (`topic`, the
OffsetManager over `__consumer_offsets`).

Threading: everything runs on the one event loop of the hosting process; nothing blocks
except the page-cache write of an append.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pyk.coordinator.api import (
    DeletableGroupResult,
    DescribedConsumerGroup,
    DescribedGroup,
    DescribedGroupMember,
    ListedGroup,
)
from pyk.coordinator.classic import ClassicGroupManager
from pyk.coordinator.consumer import ConsumerGroupManager
from pyk.coordinator.consumer_group import ConsumerGroup
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE, encode_assignment, encode_subscription
from pyk.coordinator.group import Group, GroupState
from pyk.coordinator.offset_metadata import OffsetMetadataManager
from pyk.coordinator.offsets import OFFSETS_TOPIC, OffsetManager
from pyk.coordinator.records import encode_group_metadata_key, encode_offset_commit_key
from pyk.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from pyk.coordinator.host import CoordinatorHost
    from pyk.coordinator.transaction import TransactionCoordinator

log = logging.getLogger("pyk.coordinator")

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1

T = TypeVar("T")


class GroupCoordinator:
    """The group coordinator of one broker process (see the module docstring).

    Lifecycle: built with its CoordinatorHost; `start(loop)` loads the local `__consumer_offsets`
    partitions (before the listener opens, so no request ever sees a half-loaded group) and
    starts the retention sweep; `stop()` cancels every timer and answers parked JoinGroup /
    SyncGroup requests with NOT_COORDINATOR.
    """

    def __init__(self, host: CoordinatorHost, clock_ms: Callable[[], int] | None = None) -> None:
        self.host = host
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.topic = OffsetManager(host, self.clock_ms)
        # TxnOffsetCommit's verification (KIP-890); bound by the node once both coordinators exist
        self.transactions: TransactionCoordinator | None = None
        self.groups: dict[str, Group] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.classic = ClassicGroupManager(self)
        self.consumer = ConsumerGroupManager(self)
        self.offsets = OffsetMetadataManager(self)

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        started = time.monotonic()
        records = sum(self._load_partition(partition) for partition in self.topic.local_partitions())
        if records:
            log.info("loaded %d groups (%d records of %s) in %.2fs", len(self.groups), records, OFFSETS_TOPIC,
                     time.monotonic() - started)
        self.offsets.start()

    def _load_partition(self, partition: int) -> int:
        """Restores the groups of one local partition; returns the records replayed."""
        loaded = self.topic.load_partition(partition)
        for group_id, value in loaded.groups.items():
            self.groups[group_id] = self.classic.restore(group_id, partition, value)
        for group_id, group_offsets in loaded.offsets.items():
            group = self.groups.get(group_id)
            if group is None:  # offsets only: a consumer that commits without joining
                group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
            group.offsets.update(group_offsets)
        for group_id, consumer_records in loaded.consumer_groups.items():
            group = self.groups.get(group_id)
            if group is None:
                group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
            self.consumer.restore(group, consumer_records)
        for producer_id, by_group in loaded.pending.items():  # transactions still open
            for group_id, group_offsets in by_group.items():
                group = self.groups.get(group_id)
                if group is None:
                    group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
                group.pending_txn_offsets.setdefault(producer_id, {}).update(group_offsets)
        return loaded.records

    # Failover (a cluster's leadership changes) ---------------------------------------------------
    def elected(self, partition: int) -> None:
        """This node became the leader of `partition` of `__consumer_offsets`: its groups are
        served from here on (Kafka's onElection / loadGroupsForPartition)."""
        if self.loop is None:  # not started yet: start() loads every partition led by then
            return
        started = time.monotonic()
        records = self._load_partition(partition)
        log.info("%s-%d led here: loaded %d records in %.2fs", OFFSETS_TOPIC, partition, records,
                 time.monotonic() - started)

    def resigned(self, partition: int) -> None:
        """This node no longer leads `partition`: its groups are dropped (their parked joins
        answer NOT_COORDINATOR, so the members find the new coordinator)."""
        gone = [g for g in self.groups.values() if g.partition == partition]
        for group in gone:
            self.consumer.stop_group(group)
            self.classic.stop_group(group)
            del self.groups[group.group_id]
        log.info("%s-%d led elsewhere now: unloaded %d groups", OFFSETS_TOPIC, partition, len(gone))

    def stop(self) -> None:
        self.offsets.stop()
        for group in self.groups.values():
            self.consumer.stop_group(group)
            self.classic.stop_group(group)

    # Placement ---------------------------------------------------------------------------------
    def replication(self, group_id: str) -> Awaitable[ErrorCode] | None:
        """The wait for the ISR of the group's `__consumer_offsets` partition to have what was
        written so far (CoordinatorTopic.replication), before a request that wrote is answered."""
        return self.topic.replication(self.topic.partition_for(group_id))

    def once_replicated(self, group_id: str, answer: T, failed: Callable[[ErrorCode], T]) -> T | Awaitable[T]:
        """`answer` once the ISR of the group's partition has everything written to it so far
        (Kafka's coordinator runtime answers a group request only once its records, or those
        written before it, are committed), `failed(code)` with the mapped code when it does not
        in time; `answer` at once on a single host."""
        waiting = self.replication(group_id)
        return answer if waiting is None else _answer_once_replicated(waiting, answer, failed)

    def check_local(self, group_id: str) -> int:
        """The group's `__consumer_offsets` partition, if this process hosts it; else the error a
        client answers by looking the coordinator up again."""
        if not self.topic.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{OFFSETS_TOPIC} does not exist yet")
        partition = self.topic.partition_for(group_id)
        if self.topic.log_for(partition) is None:
            raise KafkaError(ErrorCode.NOT_COORDINATOR,
                             f"group {group_id!r} lives in {OFFSETS_TOPIC}-{partition}, not led here")
        return partition

    def coordinator_node(self, topic: str, partition: int) -> dict[str, Any]:
        """The node (node_id, host, port) leading `partition` of an internal topic; this node
        while the topic does not exist yet."""
        info = self.host.topic(topic)
        node_id = self.host.leader(info, partition) if info is not None else self.host.node_id
        node = self.host.node(node_id)
        if node is not None:
            return node
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"node {node_id} leading {topic}-{partition} is unknown")

    def needs_offsets_topic(self) -> bool:
        """True when answering FindCoordinator for a group must first create `__consumer_offsets`."""
        return not self.topic.topic_exists()

    async def ensure_offsets_topic(self) -> None:
        await self.topic.ensure_topic()

    def find_coordinator(self, group_id: str) -> dict[str, Any]:
        """{"node_id", "host", "port"} of the coordinator of `group_id`; KafkaError when there is none."""
        if not self.topic.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{OFFSETS_TOPIC} does not exist yet")
        return self.coordinator_node(OFFSETS_TOPIC, self.topic.partition_for(group_id))

    # Admin: ListGroups / DescribeGroups / DeleteGroups -------------------------------------------
    def list_groups(self, states: list[str]) -> list[ListedGroup]:
        """ListGroups: this process's live groups, those in `states` (Kafka's names, any case) if given."""
        wanted = {s.lower() for s in states}
        out = []
        for g in self.groups.values():
            if g.is_(GroupState.DEAD):
                continue
            if g.consumer is not None and g.consumer.members:
                entry = ListedGroup(g.group_id, PROTOCOL_TYPE, g.consumer.state_name)
            else:
                entry = ListedGroup(g.group_id, g.protocol_type or "", g.state.value)
            if not wanted or entry.group_state.lower() in wanted:
                out.append(entry)
        return out

    def describe_group(self, group_id: str) -> DescribedGroup:
        try:
            self.check_local(group_id)
        except KafkaError as exc:
            return DescribedGroup(exc.code, group_id)
        group = self.groups.get(group_id)
        if group is None:
            return DescribedGroup(ErrorCode.GROUP_ID_NOT_FOUND, group_id)  # Dead; v0-v5 without the error
        if group.consumer is not None and group.consumer.members:
            return self._describe_consumer_group(group.consumer)
        stable = group.is_(GroupState.STABLE)
        protocol = group.protocol_name
        members = [DescribedGroupMember(
            m.member_id, m.group_instance_id, m.client_id, m.client_host,
            # Metadata and assignment only mean something once the generation is complete.
            m.metadata_for(protocol) if stable and protocol is not None else b"",
            m.assignment if stable else b"",
        ) for m in group.members.values()]
        return DescribedGroup(ErrorCode.NONE, group_id, group.state.value, group.protocol_type or "",
                              (protocol or "") if stable else "", members)

    @staticmethod
    def _describe_consumer_group(consumer: ConsumerGroup) -> DescribedGroup:
        """A consumer-protocol group in DescribeGroups' classic shape: the state by Kafka's
        consumer-group names, the server assignor as the protocol, and each member's topics and
        current assignment as consumer-protocol bytes (topic ids mapped back to names)."""
        names = consumer.topic_names()
        members = [DescribedGroupMember(
            m.member_id, m.instance_id, m.client_id, m.client_host, encode_subscription(sorted(m.topics)),
            encode_assignment({names[t]: sorted(ps) for t, ps in m.assigned.items() if t in names and ps}),
        ) for m in consumer.members.values()]
        return DescribedGroup(ErrorCode.NONE, consumer.group_id, consumer.state_name, PROTOCOL_TYPE, "uniform", members)

    def describe_consumer_group(self, group_id: str) -> DescribedConsumerGroup:
        """ConsumerGroupDescribe of one group: its consumer-protocol state, or an error code.

        As Kafka's GroupMetadataManager.consumerGroupDescribe: an unknown group and a classic
        group are both GROUP_ID_NOT_FOUND (the admin client then falls back to DescribeGroups)."""
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
            self.check_local(group_id)
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
            if group.consumer is None:
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        except KafkaError as exc:
            return DescribedConsumerGroup(exc.code, exc.message or None, group_id)
        return group.consumer.describe()

    def delete_groups(self, group_ids: list[str]) -> list[DeletableGroupResult]:
        results = []
        for group_id in group_ids:
            code = ErrorCode.NONE
            try:
                self.check_local(group_id)
                group = self.groups.get(group_id)
                if group is None or group.is_(GroupState.DEAD):
                    raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id!r} does not exist")
                if not group.is_(GroupState.EMPTY) or not group.is_empty:
                    raise KafkaError(ErrorCode.NON_EMPTY_GROUP, f"group {group_id!r} is {group.state.value}")
                if group.consumer is not None and group.consumer.members:
                    raise KafkaError(ErrorCode.NON_EMPTY_GROUP, f"group {group_id!r} is {group.consumer.state_name}")
                self._delete_group(group)
            except KafkaError as exc:
                code = exc.code
            results.append(DeletableGroupResult(group_id, code))
        return results

    def _delete_group(self, group: Group) -> None:
        """Tombstones for the group's offsets and metadata, then it is gone (Dead)."""
        records: list[tuple[bytes, bytes | None]] = [
            (encode_offset_commit_key(group.group_id, topic, index), None) for topic, index in group.offsets
        ]
        records.append((encode_group_metadata_key(group.group_id), None))
        records += self.consumer.tombstones(group)
        self.topic.append(group.partition, records)
        group.offsets.clear()
        group.transition(GroupState.DEAD, self.clock_ms())
        self.classic.cancel_group_timers(group)
        del self.groups[group.group_id]
        log.info("group %s deleted", group.group_id)

    def forget_if_unused(self, group: Group) -> None:
        """A group that a failed join created and nothing refers to is not kept (never written)."""
        if (group.is_(GroupState.EMPTY) and group.generation == 0 and group.is_empty and not group.offsets
                and not group.pending_txn_offsets and (group.consumer is None or not group.consumer.members)
                and self.groups.get(group.group_id) is group):
            self.consumer.drop_records(group)
            self.classic.cancel_group_timers(group)
            del self.groups[group.group_id]


async def _answer_once_replicated(waiting: Awaitable[ErrorCode], answer: T, failed: Callable[[ErrorCode], T]) -> T:
    code = await waiting
    return answer if code == ErrorCode.NONE else failed(code)
