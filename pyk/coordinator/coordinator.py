"""GroupCoordinator: the consumer groups this process hosts, classic and KIP-848.

A group is hosted by the process that leads its `__consumer_offsets` partition (see offsets.py);
every other process answers its requests with NOT_COORDINATOR and FindCoordinator names the
right node.  On one process that is every group; with one process per core (issue 4) each
shard runs one GroupCoordinator over the partitions placed on it, and no group ever spans two.

What it implements, following Kafka's GroupCoordinator (GroupMetadataManager's classic-group
half in Kafka 3.7+), because the clients' state machines were written against it:
  * JoinGroup with KIP-394 member ids (v4+: MEMBER_ID_REQUIRED, then a rejoin with the id),
    group.initial.rebalance.delay.ms for new groups, rebalance.timeout.ms for rejoining
    members, the protocol every member supports and most prefer, the leader's member list;
  * SyncGroup: the leader's assignment is written to `__consumer_offsets` (GroupMetadataValue)
    before anyone receives it, so a coordinator restart keeps the generation and assignment;
  * Heartbeat / session.timeout.ms: members that stop heartbeating are removed and the group
    rebalances; a member parked in a JoinGroup/SyncGroup counts as alive (it cannot heartbeat);
  * LeaveGroup (v3+: batches and removal by group.instance.id);
  * static membership (KIP-345): a known group.instance.id rejoining with an unknown member id
    takes over its old member's id, metadata and assignment without a rebalance (when the
    group's protocol is unaffected); requests with the replaced member id get FENCED_INSTANCE_ID;
  * TxnOffsetCommit (KIP-98/KIP-447): offsets committed inside a producer's transaction are
    written as its transactional batch and stay pending (invisible to OffsetFetch, which
    answers UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets) until the
    transaction's marker commits or drops them (`complete_txn`, called by WriteTxnMarkers);
  * OffsetCommit / OffsetFetch, fenced by generation and member id, and offset retention
    (offsets.retention.minutes, KIP-211: an empty group's offsets expire once it has been
    empty that long; a stable consumer group's offsets of topics it no longer subscribes to
    expire that long after their last commit; a group with no offsets left is deleted);
  * ListGroups, DescribeGroups, ConsumerGroupDescribe (KIP-848 groups only), DeleteGroups,
    OffsetDelete;
  * the consumer protocol of KIP-848 (ConsumerGroupHeartbeat, server-side assignment): the
    state and reconciliation live in consumer_group.py; this class places the group, looks its
    topics up, runs each member's session (group.consumer.session.timeout.ms) and revocation
    (the member's rebalance timeout) timer, and fences OffsetCommit / OffsetFetch (v9+) by member
    epoch.  A group
    is classic or consumer, never both: a classic JoinGroup is refused with
    INCONSISTENT_GROUP_PROTOCOL while a consumer group has members, a heartbeat for a classic
    group with members gets GROUP_ID_NOT_FOUND, and an emptied group may switch.  A consumer
    group's state is written to `__consumer_offsets` as Kafka's consumer-group records after
    every change (only the records that changed; consumer_group_records.py) and replayed at
    load: after a coordinator restart each member carries on at its epoch and assignment, and
    one that does not come back expires with its session timeout.

Timers run on the event loop: one per member (its heartbeat deadline, re-armed lazily so a
heartbeat only moves a number), one per group for the join phase and one for the sync phase,
one per pending (KIP-394) member, and the periodic offset-retention sweep.

Threading: everything runs on the one event loop of the hosting process; nothing blocks
except the page-cache write of an append.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pyk.coordinator.consumer_group import ConsumerGroup, ConsumerMember, MemberState
from pyk.coordinator.consumer_group_records import group_records, restore_group
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE, encode_assignment, encode_subscription
from pyk.coordinator.group import Group, GroupState, Member, Protocols
from pyk.coordinator.offsets import OFFSETS_TOPIC, OffsetManager
from pyk.coordinator.records import (
    CONSUMER_GROUP_MEMBER_RECORDS,
    ConsumerGroupKey,
    ConsumerGroupValue,
    GroupMetadataValue,
    MemberMetadata,
    OffsetAndMetadata,
    encode_consumer_group_key,
    encode_group_metadata_key,
    encode_group_metadata_value,
    encode_offset_commit_key,
    encode_offset_commit_value,
)
from pyk.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from pyk.coordinator.host import CoordinatorHost
    from pyk.coordinator.transaction import TransactionCoordinator

log = logging.getLogger("pyk.coordinator")

# A member that joined but never got its JoinGroup answer cannot heartbeat (its id is not yet
# known to it), so it is given this long instead of its session timeout (Kafka's
# group.new.member.join.timeout.ms, an internal constant of 5 minutes).
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000
UNKNOWN_MEMBER_ID = ""
NO_GENERATION = -1

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1

JoinResult = dict[str, Any] | Awaitable[dict[str, Any]]


def _join_error(member_id: str, code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "generation_id": NO_GENERATION, "protocol_type": None, "protocol_name": None,
            "leader": "", "skip_assignment": False, "member_id": member_id, "members": []}


def _sync_error(code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "protocol_type": None, "protocol_name": None, "assignment": b""}


def _complete(future: asyncio.Future[dict[str, Any]] | None, body: dict[str, Any]) -> None:
    if future is not None and not future.done():
        future.set_result(body)


class GroupCoordinator:
    """The classic group coordinator of one broker process (see the module docstring).

    Lifecycle: built with its CoordinatorHost; `start(loop)` loads the local `__consumer_offsets`
    partitions (before the listener opens, so no request ever sees a half-loaded group) and
    starts the retention sweep; `stop()` cancels every timer and answers parked JoinGroup /
    SyncGroup requests with NOT_COORDINATOR.

    The request methods take the decoded request (Kafka's field names) and return the response
    body in the newest version's shape; the handlers adapt it to the version asked.  JoinGroup
    and SyncGroup may return an awaitable (the member waits for the rebalance phase to end).
    """

    def __init__(self, host: CoordinatorHost, clock_ms: Callable[[], int] | None = None) -> None:
        self.host = host
        config = host.config
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.offsets = OffsetManager(host, self.clock_ms)
        # TxnOffsetCommit's verification (KIP-890); bound by the node once both coordinators exist
        self.transactions: TransactionCoordinator | None = None
        self.groups: dict[str, Group] = {}
        self.min_session_timeout_ms: int = config["group.min.session.timeout.ms"]
        self.max_session_timeout_ms: int = config["group.max.session.timeout.ms"]
        self.initial_rebalance_delay_ms: int = config["group.initial.rebalance.delay.ms"]
        self.max_group_size: int = config["group.max.size"]
        self.retention_ms: int = config["offsets.retention.minutes"] * 60_000
        self.retention_check_interval_ms: int = config["offsets.retention.check.interval.ms"]
        self.max_metadata_bytes: int = config["offset.metadata.max.bytes"]
        self.consumer_session_timeout_ms: int = config["group.consumer.session.timeout.ms"]
        self.consumer_heartbeat_interval_ms: int = config["group.consumer.heartbeat.interval.ms"]
        self.consumer_max_size: int = config["group.consumer.max.size"]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._retention_timer: asyncio.TimerHandle | None = None
        # (group, member) of consumer-protocol members loaded at start-up that have not
        # heartbeated since: their first heartbeat is logged (a resumed member, not a rejoin).
        self._loaded_members: set[tuple[str, str]] = set()

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        started = time.monotonic()
        records = 0
        for partition in self.offsets.local_partitions():
            loaded = self.offsets.load_partition(partition)
            records += loaded.records
            for group_id, value in loaded.groups.items():
                self.groups[group_id] = self._restore_group(group_id, partition, value)
            for group_id, group_offsets in loaded.offsets.items():
                group = self.groups.get(group_id)
                if group is None:  # offsets only: a consumer that commits without joining
                    group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
                group.offsets.update(group_offsets)
            for group_id, consumer_records in loaded.consumer_groups.items():
                group = self.groups.get(group_id)
                if group is None:
                    group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
                self._restore_consumer_group(group, consumer_records)
            for producer_id, by_group in loaded.pending.items():  # transactions still open
                for group_id, group_offsets in by_group.items():
                    group = self.groups.get(group_id)
                    if group is None:
                        group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
                    group.pending_txn_offsets.setdefault(producer_id, {}).update(group_offsets)
        if records:
            log.info("loaded %d groups (%d records of %s) in %.2fs", len(self.groups), records, OFFSETS_TOPIC,
                     time.monotonic() - started)
        self._schedule_retention()

    def stop(self) -> None:
        if self._retention_timer is not None:
            self._retention_timer.cancel()
            self._retention_timer = None
        for group in self.groups.values():
            self._cancel_group_timers(group)
            if group.consumer is not None:
                for cm in group.consumer.members.values():
                    if cm.timer is not None:
                        cm.timer.cancel()
                        cm.timer = None
            for member in group.members.values():
                if member.timer is not None:
                    member.timer.cancel()
                    member.timer = None
                _complete(member.join_future, _join_error(member.member_id, ErrorCode.NOT_COORDINATOR))
                _complete(member.sync_future, _sync_error(ErrorCode.NOT_COORDINATOR))
                member.join_future = member.sync_future = None

    def _restore_consumer_group(self, group: Group, records: dict[ConsumerGroupKey, ConsumerGroupValue]) -> None:
        """A KIP-848 group as its records left it; each member gets a full session from now to
        heartbeat (with its member id and epoch it simply carries on)."""
        consumer = group.consumer = restore_group(group.group_id, records, self.consumer_max_size)
        # What is on disk: the loaded records (a stray one is tombstoned with the group), as the
        # current state encodes them, so an unchanged group writes nothing at its next heartbeat.
        consumer.written = {key: b"" for key in records} | group_records(consumer)
        for member in consumer.members.values():
            self._arm_consumer_timer(group, member)
            self._loaded_members.add((group.group_id, member.member_id))
        log.info("consumer group %s loaded: group epoch %d, %d members", group.group_id, consumer.group_epoch,
                 len(consumer.members))

    def _restore_group(self, group_id: str, partition: int, value: GroupMetadataValue) -> Group:
        """A group as its last GroupMetadataValue left it: Empty, or Stable with its members,
        who get a full session timeout from now to show up (Kafka's onLoaded)."""
        group = Group(group_id, partition, value.current_state_timestamp)
        group.generation = value.generation
        group.protocol_type = value.protocol_type or None
        group.protocol_name = value.protocol
        for mm in value.members:
            member = Member(mm.member_id, mm.group_instance_id, mm.client_id, mm.client_host, mm.rebalance_timeout,
                            mm.session_timeout, value.protocol_type, [(value.protocol or "", mm.subscription)])
            member.assignment = mm.assignment
            group.add(member, None)
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
        if group.members:
            # Restored, not transitioned: the stored generation completed its sync before the
            # record was written, so the group resumes exactly where it was.
            group.previous_state, group.state = GroupState.COMPLETING_REBALANCE, GroupState.STABLE
            if value.leader in group.members:
                group.leader_id = value.leader
        group.subscribed_topics = group.compute_subscribed_topics()
        return group

    # Placement ---------------------------------------------------------------------------------
    def _check_local(self, group_id: str) -> int:
        """The group's `__consumer_offsets` partition, if this process hosts it; else the error a
        client answers by looking the coordinator up again."""
        if not self.offsets.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{OFFSETS_TOPIC} does not exist yet")
        partition = self.offsets.partition_for(group_id)
        if self.offsets.log_for(partition) is None:
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
        return not self.offsets.topic_exists()

    async def ensure_offsets_topic(self) -> None:
        await self.offsets.ensure_topic()

    def find_coordinator(self, group_id: str) -> dict[str, Any]:
        """{"node_id", "host", "port"} of the coordinator of `group_id`; KafkaError when there is none."""
        if not self.offsets.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{OFFSETS_TOPIC} does not exist yet")
        return self.coordinator_node(OFFSETS_TOPIC, self.offsets.partition_for(group_id))

    # JoinGroup ---------------------------------------------------------------------------------
    def join_group(self, request: dict[str, Any], client_id: str, client_host: str, version: int) -> JoinResult:
        group_id = request["group_id"]
        member_id = request["member_id"]
        instance_id = request.get("group_instance_id")
        session_timeout = request["session_timeout_ms"]
        rebalance_timeout = request.get("rebalance_timeout_ms", -1)
        if rebalance_timeout < 0:  # v0 has none: Kafka uses the session timeout
            rebalance_timeout = session_timeout
        protocol_type = request["protocol_type"]
        protocols: Protocols = [(p["name"], bytes(p["metadata"])) for p in request["protocols"]]
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
            partition = self._check_local(group_id)
        except KafkaError as exc:
            return _join_error(member_id, exc.code)
        if not self.min_session_timeout_ms <= session_timeout <= self.max_session_timeout_ms:
            return _join_error(member_id, ErrorCode.INVALID_SESSION_TIMEOUT)
        group = self.groups.get(group_id)
        if group is None:
            if member_id != UNKNOWN_MEMBER_ID:
                return _join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
        if group.consumer is not None and not group.consumer.members:
            self._drop_consumer_records(group)
            group.consumer = None  # an emptied consumer-protocol group turns classic again
        assert self.loop is not None
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        if not self._accept_joining_member(group, member_id):
            self._remove_member(group, group.members.get(member_id), ErrorCode.GROUP_MAX_SIZE_REACHED, member_id)
            future.set_result(_join_error(UNKNOWN_MEMBER_ID, ErrorCode.GROUP_MAX_SIZE_REACHED))
            if group.is_(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        elif group.consumer is not None and group.consumer.members:
            # A consumer-protocol group (KIP-848) with members: no classic member may join it.
            future.set_result(_join_error(member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
        elif not group.supports_protocols(protocol_type, [name for name, _ in protocols]) or group.is_(GroupState.DEAD):
            code = ErrorCode.COORDINATOR_NOT_AVAILABLE if group.is_(GroupState.DEAD) else ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            future.set_result(_join_error(member_id, code))
        elif member_id == UNKNOWN_MEMBER_ID:
            new_id = f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"
            if instance_id is not None and instance_id in group.static_members:
                self._rejoin_static_member(group, instance_id, new_id, protocols, rebalance_timeout, session_timeout,
                                           future, version)
            elif instance_id is None and version >= 4:
                # KIP-394: hand out the id first, so a member that gives up before its join
                # completes leaves no ghost behind; it must rejoin with the id within its session.
                group.pending_members[new_id] = self.loop.call_later(
                    session_timeout / 1000, self._expire_pending_member, group, new_id)
                future.set_result(_join_error(new_id, ErrorCode.MEMBER_ID_REQUIRED))
            else:
                self._add_member_and_rebalance(group, new_id, instance_id, client_id, client_host, rebalance_timeout,
                                               session_timeout, protocol_type, protocols, future)
        elif member_id in group.pending_members:
            self._add_member_and_rebalance(group, member_id, None, client_id, client_host, rebalance_timeout,
                                           session_timeout, protocol_type, protocols, future)
        else:
            self._join_existing_member(group, member_id, instance_id, protocols, rebalance_timeout, session_timeout,
                                       future)
        self._forget_if_unused(group)
        return future.result() if future.done() else future

    def _accept_joining_member(self, group: Group, member_id: str) -> bool:
        """group.max.size (Kafka's acceptJoiningMember): rejoining members are always let in."""
        if group.state in (GroupState.EMPTY, GroupState.DEAD):
            return True
        member = group.members.get(member_id)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return (member is not None and member.awaiting_join) or group.awaiting_join_count() < self.max_group_size
        return member is not None or len(group.members) < self.max_group_size

    def _join_existing_member(self, group: Group, member_id: str, instance_id: str | None, protocols: Protocols,
                              rebalance_timeout: int, session_timeout: int,
                              future: asyncio.Future[dict[str, Any]]) -> None:
        try:
            group.validate_member(member_id, instance_id)
        except KafkaError as exc:
            future.set_result(_join_error(member_id, exc.code))
            return
        member = group.members[member_id]
        state = group.state
        if state is GroupState.PREPARING_REBALANCE:
            self._update_member_and_rebalance(group, member, protocols, rebalance_timeout, session_timeout, future)
        elif state is GroupState.COMPLETING_REBALANCE:
            if member.matches(protocols):
                # The member missed its JoinGroup answer (a retry): give it the current generation.
                members = group.current_member_metadata() if group.leader_id == member_id else []
                future.set_result(self._join_response(group, member_id, members))
            else:
                self._update_member_and_rebalance(group, member, protocols, rebalance_timeout, session_timeout, future)
        elif state is GroupState.STABLE:
            if group.leader_id == member_id or not member.matches(protocols):
                # The leader rejoins to reassign after changes the metadata does not show (new
                # partitions of a subscribed topic), so its join always rebalances.
                self._update_member_and_rebalance(group, member, protocols, rebalance_timeout, session_timeout, future)
            else:
                future.set_result(self._join_response(group, member_id, []))
        else:
            future.set_result(_join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID))

    def _join_response(self, group: Group, member_id: str, members: list[dict[str, Any]],
                       leader: str | None = None, skip_assignment: bool = False) -> dict[str, Any]:
        return {"error_code": ErrorCode.NONE, "generation_id": group.generation,
                "protocol_type": group.protocol_type, "protocol_name": group.protocol_name,
                "leader": leader if leader is not None else group.leader_id or "",
                "skip_assignment": skip_assignment, "member_id": member_id, "members": members}

    def _add_member_and_rebalance(self, group: Group, member_id: str, instance_id: str | None, client_id: str,
                                  client_host: str, rebalance_timeout: int, session_timeout: int, protocol_type: str,
                                  protocols: Protocols, future: asyncio.Future[dict[str, Any]]) -> None:
        member = Member(member_id, instance_id, client_id, client_host, rebalance_timeout, session_timeout,
                        protocol_type, protocols)
        member.is_new = True
        if group.is_(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True  # extends the initial rebalance delay
        group.add(member, future)
        self._schedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group, f"new member {member_id} joined")

    def _update_member_and_rebalance(self, group: Group, member: Member, protocols: Protocols, rebalance_timeout: int,
                                     session_timeout: int, future: asyncio.Future[dict[str, Any]]) -> None:
        # A second JoinGroup while the first still waits (a client retry on another
        # connection): the older one is answered so its connection does not hang forever.
        _complete(member.join_future, _join_error(member.member_id, ErrorCode.REBALANCE_IN_PROGRESS))
        group.update_member(member, protocols, rebalance_timeout, session_timeout, future)
        self._maybe_prepare_rebalance_or_complete_join(group, f"member {member.member_id} rejoined")

    def _rejoin_static_member(self, group: Group, instance_id: str, new_id: str, protocols: Protocols,
                              rebalance_timeout: int, session_timeout: int, future: asyncio.Future[dict[str, Any]],
                              version: int) -> None:
        """KIP-345: a known group.instance.id joins with a new member id (the client restarted)."""
        old_id = group.static_members[instance_id]
        member = group.members[old_id]
        log.info("group %s: static member %s (%s) replaced by %s in state %s", group.group_id, instance_id, old_id,
                 new_id, group.state.value)
        # Whatever the previous incarnation still waits for is fenced.
        _complete(member.join_future, _join_error(old_id, ErrorCode.FENCED_INSTANCE_ID))
        _complete(member.sync_future, _sync_error(ErrorCode.FENCED_INSTANCE_ID))
        member.join_future = member.sync_future = None
        previous_leader = group.leader_id
        old_protocols, old_rebalance, old_session = member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms
        group.replace_static_member(instance_id, old_id, new_id)
        self._schedule_heartbeat(group, member, session_timeout, restart=True)
        group.update_member(member, protocols, rebalance_timeout, session_timeout, future)
        if group.is_(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                # No rebalance: persist the new member id, give the member its old assignment.
                member.join_future = None
                try:
                    self._store_group(group)
                except KafkaError as exc:
                    group.update_member(member, old_protocols, old_rebalance, old_session, None)
                    group.replace_static_member(instance_id, new_id, old_id)
                    self._schedule_heartbeat(group, member, old_session, restart=True)
                    future.set_result(_join_error(UNKNOWN_MEMBER_ID, exc.code))
                    return
                if version >= 9:
                    # KIP-814: a static leader learns the members but keeps the assignment.
                    is_leader = group.leader_id == new_id
                    members = group.current_member_metadata() if is_leader else []
                    future.set_result(self._join_response(group, new_id, members, skip_assignment=is_leader))
                else:
                    # Older clients would reassign if told they lead: name the previous leader id.
                    future.set_result(self._join_response(group, new_id, [], leader=previous_leader or ""))
            else:
                self._maybe_prepare_rebalance_or_complete_join(group, f"static member {instance_id} changed protocols")
        elif group.is_(GroupState.COMPLETING_REBALANCE):
            # The leader may already be assigning to the old member id: start over.
            self._prepare_rebalance(group, f"static member {instance_id} rejoined during CompletingRebalance")
        else:
            self._maybe_complete_join_phase(group)

    # Rebalance phases ---------------------------------------------------------------------------
    def _maybe_prepare_rebalance_or_complete_join(self, group: Group, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: Group) -> None:
        # The initial rebalance of a new group always waits out its delay (more members may come).
        if (group.is_(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined()
                and group.previous_state is not GroupState.EMPTY):
            self._complete_join(group)

    def _prepare_rebalance(self, group: Group, reason: str) -> None:
        if group.is_(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment(group, ErrorCode.REBALANCE_IN_PROGRESS)
        self._cancel_timer(group, "sync_timer")
        group.pending_sync.clear()
        initial = group.is_(GroupState.EMPTY)
        group.transition(GroupState.PREPARING_REBALANCE, self.clock_ms())
        log.info("group %s: preparing to rebalance (generation %d): %s", group.group_id, group.generation, reason)
        if initial:
            delay = self.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._set_join_timer(group, delay, self._try_complete_initial_join, group, delay, remaining)
        elif group.has_all_members_joined():
            self._complete_join(group)
        else:
            self._set_join_timer(group, group.rebalance_timeout_ms(), self._complete_join, group)

    def _try_complete_initial_join(self, group: Group, delay: int, remaining: int) -> None:
        """group.initial.rebalance.delay.ms: while members keep arriving, wait another delay,
        never longer than the rebalance timeout in total."""
        group.join_timer = None
        if group.new_member_added and remaining:
            group.new_member_added = False
            next_delay = min(self.initial_rebalance_delay_ms, remaining)
            self._set_join_timer(group, next_delay, self._try_complete_initial_join, group, next_delay,
                                 max(remaining - delay, 0))
        else:
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """End of the join phase: members that did not rejoin are dropped (static ones are kept:
        they may come back), the next generation starts and every waiting member is answered."""
        self._cancel_timer(group, "join_timer")
        if not group.is_(GroupState.PREPARING_REBALANCE):
            return
        dropped = [m for m in group.not_yet_rejoined() if not m.is_static]
        for member in dropped:
            self._remove_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        if dropped:
            log.info("group %s: removed members that did not rejoin: %s", group.group_id,
                     ", ".join(m.member_id for m in dropped))
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members that did not rejoin are left: wait for them, or for their
            # session timeouts to remove them.
            log.warning("group %s: no member rejoined; waiting another rebalance timeout", group.group_id)
            self._set_join_timer(group, group.rebalance_timeout_ms(), self._complete_join, group)
            return
        group.init_next_generation(self.clock_ms())
        if group.is_(GroupState.EMPTY):
            log.info("group %s: generation %d is empty", group.group_id, group.generation)
            try:
                self._store_group(group)
            except KafkaError as exc:
                # The previous generation stays on disk; with no members it can only time out.
                log.warning("group %s: could not store the empty generation: %s", group.group_id, exc)
            return
        log.info("group %s: generation %d with %d members, protocol %s, leader %s", group.group_id,
                 group.generation, len(group.members), group.protocol_name, group.leader_id)
        leader_members = group.current_member_metadata()
        for member in group.members.values():
            future, member.join_future = member.join_future, None
            members = leader_members if member.member_id == group.leader_id else []
            _complete(future, self._join_response(group, member.member_id, members))
            member.is_new = False
            self._schedule_heartbeat(group, member, member.session_timeout_ms)
            group.pending_sync.add(member.member_id)
        self._set_sync_timer(group)

    def _set_sync_timer(self, group: Group) -> None:
        """Members that do not send SyncGroup within the rebalance timeout are removed (Kafka's
        pending-sync expiry), so a leader that never assigns cannot stall the group forever."""
        self._cancel_timer(group, "sync_timer")
        assert self.loop is not None
        group.sync_timer = self.loop.call_later(group.rebalance_timeout_ms() / 1000, self._expire_pending_sync, group,
                                                group.generation)

    def _expire_pending_sync(self, group: Group, generation: int) -> None:
        group.sync_timer = None
        if generation != group.generation or group.state not in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            return
        if not group.pending_sync:
            return
        missing = list(group.pending_sync)
        for member_id in missing:
            self._remove_member(group, group.members.get(member_id), ErrorCode.UNKNOWN_MEMBER_ID, member_id)
        self._prepare_rebalance(group, f"members {', '.join(missing)} sent no SyncGroup in time")

    def _reset_and_propagate_assignment(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: Group, error: ErrorCode) -> None:
        ok = error == ErrorCode.NONE
        for member in group.members.values():
            future, member.sync_future = member.sync_future, None
            if future is None:
                continue
            _complete(future, {"error_code": error, "protocol_type": group.protocol_type if ok else None,
                               "protocol_name": group.protocol_name if ok else None,
                               "assignment": member.assignment})
            # Any expiry that passed while the member waited was ignored: start a fresh session.
            self._schedule_heartbeat(group, member, member.session_timeout_ms)

    def _member_group(self, group_id: str, member_id: str, instance_id: str | None) -> Any:
        """The live classic group a SyncGroup/Heartbeat names, with the member checked in it."""
        if not group_id:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
        self._check_local(group_id)
        group = self.groups.get(group_id)
        if group is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"group {group_id!r} does not exist")
        if group.is_(GroupState.DEAD):
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "group is being deleted")
        group.validate_member(member_id, instance_id)
        return group

    # SyncGroup ---------------------------------------------------------------------------------
    def sync_group(self, request: dict[str, Any]) -> JoinResult:
        group_id = request["group_id"]
        member_id = request["member_id"]
        try:
            group = self._member_group(group_id, member_id, request.get("group_instance_id"))
            if request["generation_id"] != group.generation:
                raise KafkaError(ErrorCode.ILLEGAL_GENERATION,
                                 f"generation {request['generation_id']}, the group is at {group.generation}")
            for key, current in (("protocol_type", group.protocol_type), ("protocol_name", group.protocol_name)):
                asked = request.get(key)
                if asked is not None and current is not None and asked != current:
                    raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, f"{key} {asked!r}, the group uses {current!r}")
            if group.is_(GroupState.EMPTY):
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, "the group has no members")
            if group.is_(GroupState.PREPARING_REBALANCE):
                raise KafkaError(ErrorCode.REBALANCE_IN_PROGRESS, "the group is rebalancing")
        except KafkaError as exc:
            return _sync_error(exc.code)
        member = group.members[member_id]
        if group.is_(GroupState.STABLE):
            self._remove_pending_sync(group, member_id)
            return {"error_code": ErrorCode.NONE, "protocol_type": group.protocol_type,
                    "protocol_name": group.protocol_name, "assignment": member.assignment}
        # CompletingRebalance: wait for the leader's assignment.
        assert self.loop is not None
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        _complete(member.sync_future, _sync_error(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_future = future
        self._remove_pending_sync(group, member_id)
        if group.leader_id == member_id:
            assignment = {a["member_id"]: bytes(a["assignment"]) for a in request["assignments"]}
            missing = [m for m in group.members if m not in assignment]
            if missing:
                log.warning("group %s: leader assigned nothing to %s", group.group_id, ", ".join(missing))
            try:
                self._store_group(group, assignment)
            except KafkaError as exc:
                self._reset_and_propagate_assignment(group, exc.code)
                self._maybe_prepare_rebalance_or_complete_join(group, f"storing the assignment failed: {exc}")
            else:
                for m in group.members.values():
                    m.assignment = assignment.get(m.member_id, b"")
                self._propagate_assignment(group, ErrorCode.NONE)
                group.transition(GroupState.STABLE, self.clock_ms())
                log.info("group %s: generation %d is stable", group.group_id, group.generation)
        return future.result() if future.done() else future

    def _remove_pending_sync(self, group: Group, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            self._cancel_timer(group, "sync_timer")

    # Heartbeat / LeaveGroup --------------------------------------------------------------------
    def heartbeat(self, request: dict[str, Any]) -> ErrorCode:
        group_id = request["group_id"]
        member_id = request["member_id"]
        try:
            group = self._member_group(group_id, member_id, request.get("group_instance_id"))
            if request["generation_id"] != group.generation:
                raise KafkaError(ErrorCode.ILLEGAL_GENERATION, "stale generation")
        except KafkaError as exc:
            return exc.code
        if group.is_(GroupState.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self._schedule_heartbeat(group, member, member.session_timeout_ms)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave_group(self, group_id: str, members: list[dict[str, Any]]) -> tuple[ErrorCode, list[dict[str, Any]]]:
        """(top-level error, per-member results) for LeaveGroup; members are {member_id, group_instance_id}."""
        try:
            self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is None:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"group {group_id!r} does not exist")
            if group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "group is being deleted")
        except KafkaError as exc:
            return exc.code, []
        results = []
        left = []
        for identity in members:
            member_id = identity["member_id"]
            instance_id = identity.get("group_instance_id")
            code = ErrorCode.NONE
            if member_id == UNKNOWN_MEMBER_ID:
                # Administrative removal of a static member by instance id (KIP-345).
                current = group.static_members.get(instance_id) if instance_id is not None else None
                if current is None:
                    code = ErrorCode.UNKNOWN_MEMBER_ID
                else:
                    self._remove_member(group, group.members[current], ErrorCode.UNKNOWN_MEMBER_ID)
                    left.append(current)
            elif group.remove_pending(member_id):
                left.append(member_id)
            else:
                try:
                    group.validate_member(member_id, instance_id)
                except KafkaError as exc:
                    code = exc.code
                else:
                    self._remove_member(group, group.members[member_id], ErrorCode.UNKNOWN_MEMBER_ID)
                    left.append(member_id)
            results.append({"member_id": member_id, "group_instance_id": instance_id, "error_code": code})
        if left:
            log.info("group %s: members left: %s", group.group_id, ", ".join(left))
            if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, "members left the group")
            elif group.is_(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        self._forget_if_unused(group)
        return ErrorCode.NONE, results

    def _remove_member(self, group: Group, member: Member | None, code: ErrorCode, member_id: str = "") -> None:
        """Removes a member (or a pending member id), answering whatever it still waits for."""
        if member is None:
            group.remove(member_id)
            return
        if member.timer is not None:
            member.timer.cancel()
            member.timer = None
        future, member.join_future = member.join_future, None
        _complete(future, _join_error(UNKNOWN_MEMBER_ID, code))
        sync, member.sync_future = member.sync_future, None
        _complete(sync, _sync_error(code))
        group.remove(member.member_id)

    # ConsumerGroupHeartbeat (KIP-848) ----------------------------------------------------------
    def consumer_group_heartbeat(self, request: dict[str, Any], client_id: str = "",
                                 client_host: str = "") -> dict[str, Any]:
        """One heartbeat of a consumer-protocol member: the response body (see consumer_group.py
        for the state it moves; this method adds placement, topics, timers and the interval)."""
        group_id = request["group_id"]
        created = False
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "group id is empty")
            partition = self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is None:
                if request["member_epoch"] != 0:
                    raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"group {group_id!r} does not exist")
                group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
                created = True
            if group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "group is being deleted")
            if group.consumer is None:
                if not group.is_empty or not group.is_(GroupState.EMPTY):
                    raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id!r} is a classic group")
                group.consumer = ConsumerGroup(group_id, self.consumer_max_size)
            consumer = group.consumer
            before, assignment_epoch = consumer.state_name, consumer.assignment_epoch
            body, member, removed = consumer.heartbeat(request, self._topic_lookup, lambda: str(uuid.uuid4()),
                                                       client_id, client_host, self._regex_candidates)
        except KafkaError as exc:
            log.debug("consumer group %s: heartbeat of %s refused: %s", group_id, request.get("member_id"), exc)
            if created:
                self._forget_if_unused(self.groups[group_id])
            return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": str(exc), "member_id": None,
                    "member_epoch": -1, "heartbeat_interval_ms": 0, "assignment": None}
        for old in removed:
            self._cancel_consumer_timer(old)
            self._loaded_members.discard((group_id, old.member_id))
        # Every member's target when the assignment was recomputed, else only this member's records.
        self._store_consumer_group(group, None if consumer.assignment_epoch != assignment_epoch
                                   else [body["member_id"]], removed)
        if member is not None:
            self._arm_consumer_timer(group, member)
            if (group_id, member.member_id) in self._loaded_members:
                self._loaded_members.discard((group_id, member.member_id))
                if request["member_epoch"] > 0:
                    log.info("consumer group %s: member %s resumed at epoch %d after the group was loaded",
                             group_id, member.member_id, member.epoch)
        elif not consumer.members:
            self._forget_if_unused(group)
        after = consumer.state_name
        if after != before:
            log.info("consumer group %s: %s -> %s (group epoch %d)", group_id, before, after, consumer.group_epoch)
        body["throttle_time_ms"] = 0
        body["heartbeat_interval_ms"] = self.consumer_heartbeat_interval_ms
        return body

    def _regex_candidates(self) -> list[str]:
        """The topics a regex subscription may match: every topic but the internal ones."""
        return [info.name for info in self.host.user_topics()]

    def _topic_lookup(self, name: str) -> tuple[uuid.UUID, int] | None:
        info = self.host.topic(name)
        return (info.topic_id, info.partitions) if info is not None else None

    def _arm_consumer_timer(self, group: Group, member: ConsumerMember) -> None:
        """A new session for the member; while it owes a revocation, also its rebalance timeout."""
        assert self.loop is not None
        now = self.loop.time()
        member.session_deadline = now + self.consumer_session_timeout_ms / 1000
        if member.state is MemberState.UNREVOKED_PARTITIONS and member.revoke_deadline is None:
            member.revoke_deadline = now + member.rebalance_timeout_ms / 1000
        deadline = min(member.session_deadline, member.revoke_deadline or member.session_deadline)
        if member.timer is not None:
            if member.timer.when() <= deadline:
                return  # fires early and re-arms itself (a heartbeat only moves numbers)
            member.timer.cancel()
        member.timer = self.loop.call_at(deadline, self._on_consumer_timer, group, member)

    @staticmethod
    def _cancel_consumer_timer(member: ConsumerMember) -> None:
        if member.timer is not None:
            member.timer.cancel()
            member.timer = None

    def _on_consumer_timer(self, group: Group, member: ConsumerMember) -> None:
        member.timer = None
        consumer = group.consumer
        if consumer is None or consumer.members.get(member.member_id) is not member:
            return
        assert self.loop is not None
        now = self.loop.time()
        late_revoke = member.revoke_deadline is not None and now >= member.revoke_deadline
        if now < member.session_deadline and not late_revoke:
            deadline = min(member.session_deadline, member.revoke_deadline or member.session_deadline)
            member.timer = self.loop.call_at(deadline, self._on_consumer_timer, group, member)
            return
        why = (f"did not revoke within its rebalance timeout ({member.rebalance_timeout_ms} ms)" if late_revoke
               else f"no heartbeat within {self.consumer_session_timeout_ms} ms")
        log.info("consumer group %s: member %s%s fenced: %s", group.group_id, member.member_id,
                 f" ({member.instance_id})" if member.instance_id is not None else "", why)
        consumer.remove(member.member_id)
        self._loaded_members.discard((group.group_id, member.member_id))
        self._store_consumer_group(group, [], [member])
        if not consumer.members:
            self._forget_if_unused(group)

    # Member liveness ----------------------------------------------------------------------------
    def _schedule_heartbeat(self, group: Group, member: Member, timeout_ms: int, restart: bool = False) -> None:
        """Moves the member's expiry to now + timeout_ms.  The timer is re-armed only when the
        new deadline is earlier than the armed one (or `restart`); otherwise it re-arms itself
        when it fires, so a heartbeat costs one float store."""
        assert self.loop is not None
        member.heartbeat_deadline = self.loop.time() + timeout_ms / 1000
        timer = member.timer
        if timer is not None:
            if not restart and timer.when() <= member.heartbeat_deadline:
                return
            timer.cancel()
        member.timer = self.loop.call_at(member.heartbeat_deadline, self._on_heartbeat_timer, group, member)

    def _on_heartbeat_timer(self, group: Group, member: Member) -> None:
        member.timer = None
        if group.members.get(member.member_id) is not member or self.groups.get(group.group_id) is not group:
            return  # removed or replaced meanwhile
        assert self.loop is not None
        if self.loop.time() < member.heartbeat_deadline:
            member.timer = self.loop.call_at(member.heartbeat_deadline, self._on_heartbeat_timer, group, member)
            return
        if not member.is_new and (member.awaiting_join or member.awaiting_sync):
            return  # parked in a rebalance phase: alive; the phase's end starts a new session
        log.info("group %s: member %s%s expired (no heartbeat within %d ms)", group.group_id, member.member_id,
                 f" ({member.group_instance_id})" if member.is_static else "",
                 NEW_MEMBER_JOIN_TIMEOUT_MS if member.is_new else member.session_timeout_ms)
        self._remove_member(group, member, ErrorCode.UNKNOWN_MEMBER_ID)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, f"member {member.member_id} expired")
        elif group.is_(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group)

    def _expire_pending_member(self, group: Group, member_id: str) -> None:
        if member_id not in group.pending_members:
            return
        del group.pending_members[member_id]
        log.info("group %s: pending member %s never rejoined", group.group_id, member_id)
        if group.is_(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group)
        self._forget_if_unused(group)

    # Timers ------------------------------------------------------------------------------------
    def _set_join_timer(self, group: Group, delay_ms: int, callback: Callable[..., None], *args: Any) -> None:
        self._cancel_timer(group, "join_timer")
        assert self.loop is not None
        group.join_timer = self.loop.call_later(delay_ms / 1000, callback, *args)

    @staticmethod
    def _cancel_timer(group: Group, name: str) -> None:
        timer = getattr(group, name)
        if timer is not None:
            timer.cancel()
            setattr(group, name, None)

    def _cancel_group_timers(self, group: Group) -> None:
        self._cancel_timer(group, "join_timer")
        self._cancel_timer(group, "sync_timer")
        for timer in group.pending_members.values():
            timer.cancel()
        group.pending_members.clear()

    def _forget_if_unused(self, group: Group) -> None:
        """A group that a failed join created and nothing refers to is not kept (never written)."""
        if (group.is_(GroupState.EMPTY) and group.generation == 0 and group.is_empty and not group.offsets
                and not group.pending_txn_offsets and (group.consumer is None or not group.consumer.members)
                and self.groups.get(group.group_id) is group):
            self._drop_consumer_records(group)
            self._cancel_group_timers(group)
            del self.groups[group.group_id]

    # Persistence -------------------------------------------------------------------------------
    def _store_group(self, group: Group, assignment: dict[str, bytes] | None = None) -> None:
        """Writes the group's GroupMetadataValue (with `assignment` when one is being installed)."""
        protocol = group.protocol_name
        members = [
            MemberMetadata(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                           m.session_timeout_ms, m.metadata_for(protocol) if protocol is not None else b"",
                           assignment.get(m.member_id, b"") if assignment is not None else m.assignment)
            for m in group.members.values()
        ]
        value = GroupMetadataValue(group.protocol_type or "", group.generation, protocol,
                                   group.leader_id if group.members else None, group.state_timestamp_ms, members)
        self.offsets.append(group.partition, [(encode_group_metadata_key(group.group_id),
                                               encode_group_metadata_value(value))])

    def _store_consumer_group(self, group: Group, member_ids: list[str] | None,
                              removed: list[ConsumerMember]) -> None:
        """Writes the consumer-protocol records that changed: the group's own, those of
        `member_ids` (every member when None), and tombstones for the `removed` members.

        A failed write is logged, not answered: the in-memory state stays authoritative and the
        next change writes whatever differs from disk (a restart before then loses the change,
        and the member is fenced back to a rejoin, as when nothing was persisted)."""
        consumer = group.consumer
        if consumer is None:
            return
        current: dict[ConsumerGroupKey, bytes | None] = dict(group_records(consumer, member_ids))
        for m in removed:
            if m.member_id not in consumer.members:
                for record_type in CONSUMER_GROUP_MEMBER_RECORDS:
                    current[ConsumerGroupKey(record_type, group.group_id, m.member_id)] = None
        changed = [(key, value) for key, value in current.items() if consumer.written.get(key) != value]
        if not changed:
            return
        try:
            self.offsets.append(group.partition, [(encode_consumer_group_key(k), v) for k, v in changed])
        except KafkaError as exc:
            log.warning("consumer group %s: writing %d records failed: %s", group.group_id, len(changed), exc)
            return
        for key, value in changed:
            if value is None:
                consumer.written.pop(key, None)
            else:
                consumer.written[key] = value

    @staticmethod
    def _consumer_tombstones(group: Group) -> list[tuple[bytes, bytes | None]]:
        """Tombstones for every consumer-protocol record the group has on disk."""
        if group.consumer is None:
            return []
        return [(encode_consumer_group_key(key), None) for key in group.consumer.written]

    def _drop_consumer_records(self, group: Group) -> None:
        """The group stops being a consumer-protocol group: its records are tombstoned."""
        tombstones = self._consumer_tombstones(group)
        if not tombstones:
            return
        assert group.consumer is not None
        try:
            self.offsets.append(group.partition, tombstones)
        except KafkaError as exc:
            log.warning("consumer group %s: tombstoning its records failed: %s", group.group_id, exc)
            return
        group.consumer.written.clear()

    # OffsetCommit / OffsetFetch -----------------------------------------------------------------
    def commit_offsets(self, request: dict[str, Any], version: int) -> list[dict[str, Any]]:
        """OffsetCommit: the response's topics list (an error code per partition)."""
        group_id = request["group_id"]
        generation = request.get("generation_id_or_member_epoch", NO_GENERATION)
        member_id = request.get("member_id", UNKNOWN_MEMBER_ID)
        instance_id = request.get("group_instance_id")
        topics = request["topics"]
        try:
            partition = self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is None:
                if generation >= 0 or member_id != UNKNOWN_MEMBER_ID or instance_id is not None:
                    # A member of a generation this coordinator does not know (it lost the group).
                    raise KafkaError(ErrorCode.ILLEGAL_GENERATION, f"group {group_id!r} does not exist")
                group = Group(group_id, partition, self.clock_ms())
            else:
                self._validate_offset_commit(group, member_id, instance_id, generation, version)
        except KafkaError as exc:
            return _partition_errors(topics, exc.code)
        now = self.clock_ms()
        retention = request.get("retention_time_ms", -1) if 2 <= version <= 4 else -1

        def value_of(part: dict[str, Any], metadata: str) -> OffsetAndMetadata:
            stamp = part.get("commit_timestamp", -1)
            commit_time = stamp if version == 1 and stamp >= 0 else now
            return OffsetAndMetadata(part["committed_offset"], part.get("committed_leader_epoch", -1),
                                     metadata, commit_time, now + retention if retention >= 0 else -1)

        results, records, pending = self._offset_entries(group_id, topics, value_of)
        if records:
            try:
                self.offsets.append(partition, records)
            except KafkaError as exc:
                code = ErrorCode.INVALID_COMMIT_OFFSET_SIZE if exc.code == ErrorCode.UNKNOWN_SERVER_ERROR else exc.code
                for _tp, _value, entry in pending:
                    entry["error_code"] = code
                return results
            self.groups.setdefault(group_id, group)
            for tp, value, _entry in pending:
                group.offsets[tp] = value
            member = group.members.get(member_id)
            if member is not None:  # a commit is as good as a heartbeat (Kafka does the same)
                self._schedule_heartbeat(group, member, member.session_timeout_ms)
        return results

    def _offset_entries(self, group_id: str, topics: list[dict[str, Any]],
                        value_of: Callable[[dict[str, Any], str], OffsetAndMetadata],
                        ) -> tuple[list[dict[str, Any]], list[tuple[bytes, bytes | None]],
                                   list[tuple[tuple[str, int], OffsetAndMetadata, dict[str, Any]]]]:
        """The per-partition half shared by OffsetCommit and TxnOffsetCommit: the response topics
        (an entry per partition, its error set for unknown partitions or oversized metadata), the
        offset records to write, and (partition, value, response entry) of each one written."""
        results: list[dict[str, Any]] = []
        records: list[tuple[bytes, bytes | None]] = []
        pending: list[tuple[tuple[str, int], OffsetAndMetadata, dict[str, Any]]] = []
        for topic in topics:
            name = topic["name"]
            info = self.host.topic(name)
            out = []
            for part in topic["partitions"]:
                index = part["partition_index"]
                entry = {"partition_index": index, "error_code": ErrorCode.NONE}
                metadata = part.get("committed_metadata") or ""
                if info is None or not 0 <= index < info.partitions:
                    entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif len(metadata.encode()) > self.max_metadata_bytes:
                    entry["error_code"] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                else:
                    value = value_of(part, metadata)
                    records.append((encode_offset_commit_key(group_id, name, index), encode_offset_commit_value(value)))
                    pending.append(((name, index), value, entry))
                out.append(entry)
            results.append({"name": name, "partitions": out})
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

    def fetch_offsets(self, group_id: str, topics: list[dict[str, Any]] | None, require_stable: bool = False,
                      member_id: str | None = None, member_epoch: int = -1) -> tuple[ErrorCode, list[dict[str, Any]]]:
        """OffsetFetch for one group: (group error, topics); topics None means every committed one.

        A partition with transactional offsets awaiting their marker reports its last committed
        offset, or UNSTABLE_OFFSET_COMMIT when the client asks for stable offsets only (KIP-447:
        the consumer retries until the transaction is over).  A member of a consumer-protocol
        group names itself (v9+) and is checked as for a commit (Kafka's validateOffsetFetch);
        no member id and epoch -1 is an admin client or a classic consumer: not checked."""
        try:
            self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is not None and group.consumer is not None and (member_id or member_epoch >= 0):
                cmember = group.consumer.members.get(member_id or "")
                if cmember is None:
                    raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id!r} is not in the group")
                if member_epoch != cmember.epoch:
                    raise KafkaError(ErrorCode.STALE_MEMBER_EPOCH,
                                     f"fetch with epoch {member_epoch}, the member is at {cmember.epoch}")
        except KafkaError as exc:
            return exc.code, []
        committed = group.offsets if group is not None else {}
        unstable: set[tuple[str, int]] = set()
        if require_stable and group is not None:
            for pending in group.pending_txn_offsets.values():
                unstable.update(pending)
        if topics is None:
            by_topic: dict[str, list[int]] = {}
            for name, index in committed:
                by_topic.setdefault(name, []).append(index)
            topics = [{"name": name, "partition_indexes": sorted(parts)} for name, parts in sorted(by_topic.items())]
        out = []
        for topic in topics:
            name = topic["name"]
            parts = []
            for index in topic["partition_indexes"]:
                value = committed.get((name, index))
                if (name, index) in unstable:
                    parts.append({"partition_index": index, "committed_offset": -1, "committed_leader_epoch": -1,
                                  "metadata": "", "error_code": ErrorCode.UNSTABLE_OFFSET_COMMIT})
                    continue
                parts.append({
                    "partition_index": index,
                    "committed_offset": value.offset if value is not None else -1,
                    "committed_leader_epoch": value.leader_epoch if value is not None else -1,
                    "metadata": value.metadata if value is not None else "",
                    "error_code": ErrorCode.NONE,
                })
            out.append({"name": name, "partitions": parts})
        return ErrorCode.NONE, out

    # TxnOffsetCommit / transaction markers ------------------------------------------------------
    async def txn_commit_offsets(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """TxnOffsetCommit: the response's topics (an error code per partition).

        Checks, in Kafka's order: this node coordinates the group; the group's offsets partition
        is part of the producer's ongoing transaction (AddOffsetsToTxn came first; KIP-890's
        verification, asked of the transaction coordinator, which also fences a stale epoch);
        the member's generation when it names one (v3+, KIP-447).  The offsets are then written
        as a transactional batch of the producer and kept pending until its marker."""
        group_id = request["group_id"]
        topics = request["topics"]
        producer_id, epoch = request["producer_id"], request["producer_epoch"]
        try:
            partition = self._check_local(group_id)
            assert self.transactions is not None
            code = await self.transactions.verify_partition(request["transactional_id"], producer_id, epoch,
                                                          OFFSETS_TOPIC, partition)
            if code != ErrorCode.NONE:
                raise KafkaError(code, f"{OFFSETS_TOPIC}-{partition} is not in transaction "
                                       f"{request['transactional_id']!r} (AddOffsetsToTxn first)")
            group = self.groups.get(group_id)
            if group is None:
                group = Group(group_id, partition, self.clock_ms())
            member_id = request.get("member_id", UNKNOWN_MEMBER_ID)
            generation = request.get("generation_id", NO_GENERATION)
            instance_id = request.get("group_instance_id")
            if member_id != UNKNOWN_MEMBER_ID or generation >= 0 or instance_id is not None:
                self._validate_offset_commit(group, member_id, instance_id, generation)
        except KafkaError as exc:
            return _partition_errors(topics, exc.code)
        now = self.clock_ms()
        results, records, pending = self._offset_entries(
            group_id, topics,
            lambda part, metadata: OffsetAndMetadata(part["committed_offset"], part.get("committed_leader_epoch", -1),
                                                     metadata, now))
        if records:
            try:
                self.offsets.append(partition, records, (producer_id, epoch))
            except KafkaError as exc:
                for _tp, _value, entry in pending:
                    entry["error_code"] = exc.code
                return results
            self.groups.setdefault(group_id, group)
            txn_offsets = group.pending_txn_offsets.setdefault(producer_id, {})
            for tp, value, _entry in pending:
                txn_offsets[tp] = value
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
            self._forget_if_unused(group)

    # Admin: ListGroups / DescribeGroups / DeleteGroups / OffsetDelete ----------------------------
    def list_groups(self, states: list[str]) -> list[dict[str, Any]]:
        wanted = {s.lower() for s in states}
        out = []
        for g in self.groups.values():
            if g.is_(GroupState.DEAD):
                continue
            if g.consumer is not None and g.consumer.members:
                entry = {"group_id": g.group_id, "protocol_type": PROTOCOL_TYPE, "group_state": g.consumer.state_name}
            else:
                entry = {"group_id": g.group_id, "protocol_type": g.protocol_type or "", "group_state": g.state.value}
            if not wanted or entry["group_state"].lower() in wanted:
                out.append(entry)
        return out

    def describe_group(self, group_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "group_id": group_id, "group_state": GroupState.DEAD.value,
                                 "protocol_type": "", "protocol_data": "", "members": []}
        try:
            self._check_local(group_id)
        except KafkaError as exc:
            entry["error_code"] = exc.code
            return entry
        group = self.groups.get(group_id)
        if group is None:
            return entry  # Kafka (v0-v5) describes an unknown group as Dead, without an error
        if group.consumer is not None and group.consumer.members:
            return self._describe_consumer_group(group.consumer, entry)
        stable = group.is_(GroupState.STABLE)
        protocol = group.protocol_name
        entry.update(group_state=group.state.value, protocol_type=group.protocol_type or "",
                     protocol_data=(protocol or "") if stable else "")
        entry["members"] = [{
            "member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
            "client_host": m.client_host,
            # Metadata and assignment only mean something once the generation is complete.
            "member_metadata": m.metadata_for(protocol) if stable and protocol is not None else b"",
            "member_assignment": m.assignment if stable else b"",
        } for m in group.members.values()]
        return entry

    @staticmethod
    def _describe_consumer_group(consumer: ConsumerGroup, entry: dict[str, Any]) -> dict[str, Any]:
        """A consumer-protocol group in DescribeGroups' classic shape: the state by Kafka's
        consumer-group names, the server assignor as the protocol, and each member's topics and
        current assignment as consumer-protocol bytes (topic ids mapped back to names)."""
        names = consumer.topic_names()
        entry.update(group_state=consumer.state_name, protocol_type=PROTOCOL_TYPE, protocol_data="uniform")
        entry["members"] = [{
            "member_id": m.member_id, "group_instance_id": m.instance_id, "client_id": m.client_id,
            "client_host": m.client_host,
            "member_metadata": encode_subscription(sorted(m.topics)),
            "member_assignment": encode_assignment({names[t]: sorted(ps) for t, ps in m.assigned.items()
                                                    if t in names and ps}),
        } for m in consumer.members.values()]
        return entry

    def describe_consumer_group(self, group_id: str) -> dict[str, Any]:
        """ConsumerGroupDescribe of one group: its consumer-protocol state, or an error code.

        As Kafka's GroupMetadataManager.consumerGroupDescribe: an unknown group and a classic
        group are both GROUP_ID_NOT_FOUND (the admin client then falls back to DescribeGroups)."""
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None, "group_id": group_id,
                                 "group_state": "", "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "",
                                 "members": []}
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
            self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")
            if group.consumer is None:
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
        except KafkaError as exc:
            entry.update(error_code=exc.code, error_message=exc.message or None)
            return entry
        entry.update(group.consumer.describe())
        return entry

    def delete_groups(self, group_ids: list[str]) -> list[dict[str, Any]]:
        results = []
        for group_id in group_ids:
            code = ErrorCode.NONE
            try:
                self._check_local(group_id)
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
            results.append({"group_id": group_id, "error_code": code})
        return results

    def _delete_group(self, group: Group) -> None:
        """Tombstones for the group's offsets and metadata, then it is gone (Dead)."""
        records: list[tuple[bytes, bytes | None]] = [
            (encode_offset_commit_key(group.group_id, topic, index), None) for topic, index in group.offsets
        ]
        records.append((encode_group_metadata_key(group.group_id), None))
        records += self._consumer_tombstones(group)
        self.offsets.append(group.partition, records)
        group.offsets.clear()
        group.transition(GroupState.DEAD, self.clock_ms())
        self._cancel_group_timers(group)
        del self.groups[group.group_id]
        log.info("group %s deleted", group.group_id)

    def delete_offsets(self, group_id: str, topics: list[dict[str, Any]]) -> tuple[ErrorCode, list[dict[str, Any]]]:
        """OffsetDelete: (group error, topics with per-partition errors)."""
        try:
            partition = self._check_local(group_id)
            group = self.groups.get(group_id)
            if group is None or group.is_(GroupState.DEAD):
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group_id!r} does not exist")
            if not group.is_(GroupState.EMPTY) and group.protocol_type != PROTOCOL_TYPE:
                raise KafkaError(ErrorCode.NON_EMPTY_GROUP, "only consumer groups may delete offsets while active")
        except KafkaError as exc:
            return exc.code, []
        results = []
        doomed: list[tuple[str, int]] = []
        for topic in topics:
            name = topic["name"]
            info = self.host.topic(name)
            out = []
            for part in topic["partitions"]:
                index = part["partition_index"]
                code = ErrorCode.NONE
                if info is None or not 0 <= index < info.partitions:
                    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                elif not group.is_(GroupState.EMPTY) and group.is_subscribed(name):
                    code = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                elif (name, index) in group.offsets:
                    doomed.append((name, index))
                out.append({"partition_index": index, "error_code": code})
            results.append({"name": name, "partitions": out})
        if doomed:
            try:
                self.offsets.append(partition, [(encode_offset_commit_key(group_id, t, i), None) for t, i in doomed])
            except KafkaError as exc:
                return exc.code, []
            for tp in doomed:
                del group.offsets[tp]
        return ErrorCode.NONE, results

    # Offset retention ---------------------------------------------------------------------------
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
                records += self._consumer_tombstones(group)
            if not records:
                continue
            try:
                self.offsets.append(group.partition, records)
            except KafkaError as exc:
                log.warning("group %s: expiring offsets failed: %s", group.group_id, exc)
                continue
            for tp in expired:
                del group.offsets[tp]
            expired_total += len(expired)
            if dead:
                group.transition(GroupState.DEAD, now_ms)
                self._cancel_group_timers(group)
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


def _partition_errors(topics: list[dict[str, Any]], code: ErrorCode) -> list[dict[str, Any]]:
    return [{"name": t["name"], "partitions": [{"partition_index": p["partition_index"], "error_code": code}
                                               for p in t["partitions"]]} for t in topics]
