"""ClassicGroupManager: the classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup).

The driver of the rebalance state machine whose state is group.py's Group/Member (Kafka's
ClassicGroup, driven by the classic-group half of its GroupMetadataManager), with its timers,
because the clients' state machines were written against Kafka's:
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
  * the restore of a group from its last GroupMetadataValue at load.

A group is classic or consumer (KIP-848, consumer.py), never both: a classic JoinGroup is
refused with INCONSISTENT_GROUP_PROTOCOL while a consumer group has members, and an emptied
consumer group turns classic at its first JoinGroup.

Timers run on the event loop: one per member (its heartbeat deadline, re-armed lazily so a
heartbeat only moves a number), one per group for the join phase and one for the sync phase,
and one per pending (KIP-394) member.  Owned by the GroupCoordinator, on its event loop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pyk.coordinator.api import (
    JoinGroupResponseMember,
    JoinGroupResult,
    LeaveGroupResult,
    MemberIdentity,
    MemberResponse,
    SyncGroupResult,
)
from pyk.coordinator.group import NO_GENERATION, UNKNOWN_MEMBER_ID, Group, GroupState, Member, Protocols
from pyk.coordinator.records import (
    GroupMetadataValue,
    MemberMetadata,
    encode_group_metadata_key,
    encode_group_metadata_value,
)
from pyk.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from pyk.coordinator.coordinator import GroupCoordinator

log = logging.getLogger("pyk.coordinator")

# A member that joined but never got its JoinGroup answer cannot heartbeat (its id is not yet
# known to it), so it is given this long instead of its session timeout (Kafka's
# group.new.member.join.timeout.ms, an internal constant of 5 minutes).
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000

T = TypeVar("T")


def _join_error(member_id: str, code: ErrorCode) -> JoinGroupResult:
    return JoinGroupResult(code, NO_GENERATION, None, None, "", False, member_id, [])


def _sync_error(code: ErrorCode) -> SyncGroupResult:
    return SyncGroupResult(code, None, None, b"")


def _complete(future: asyncio.Future[T] | None, result: T) -> None:
    if future is not None and not future.done():
        future.set_result(result)


class ClassicGroupManager:
    """The classic protocol's driver for the groups of one GroupCoordinator (module docstring).

    Lifecycle: made by its GroupCoordinator, whose `groups`, clock, event loop and
    `__consumer_offsets` partitions it shares; `stop_group` (from the coordinator's `stop`)
    cancels a group's timers and answers its parked JoinGroup / SyncGroup requests with
    NOT_COORDINATOR.  Not thread-safe: the coordinator's event loop only.

    The request methods take the request's fields (Kafka's names) and return typed results
    (pyk.coordinator.api); JoinGroup and SyncGroup may return an awaitable of theirs (the member
    waits for the rebalance phase to end).
    """

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.groups = coordinator.groups
        self.topic = coordinator.topic
        self.clock_ms = coordinator.clock_ms
        config = coordinator.host.config
        self.min_session_timeout_ms: int = config["group.min.session.timeout.ms"]
        self.max_session_timeout_ms: int = config["group.max.session.timeout.ms"]
        self.initial_rebalance_delay_ms: int = config["group.initial.rebalance.delay.ms"]
        self.max_group_size: int = config["group.max.size"]

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.coordinator.loop

    def stop_group(self, group: Group) -> None:
        self.cancel_group_timers(group)
        for member in group.members.values():
            if member.timer is not None:
                member.timer.cancel()
                member.timer = None
            _complete(member.join_future, _join_error(member.member_id, ErrorCode.NOT_COORDINATOR))
            _complete(member.sync_future, _sync_error(ErrorCode.NOT_COORDINATOR))
            member.join_future = member.sync_future = None

    # JoinGroup -----------------------------------------------------------------------------------
    def join_group(self, group_id: str, member_id: str, group_instance_id: str | None, session_timeout_ms: int,
                   rebalance_timeout_ms: int, protocol_type: str, protocols: Protocols, client_id: str,
                   client_host: str, version: int) -> JoinGroupResult | Awaitable[JoinGroupResult]:
        """JoinGroup; `rebalance_timeout_ms` -1 (v0 has none) is the session timeout, as in Kafka;
        `protocols` are (name, metadata) in the member's order of preference."""
        if rebalance_timeout_ms < 0:
            rebalance_timeout_ms = session_timeout_ms
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
            partition = self.coordinator.check_local(group_id)
        except KafkaError as exc:
            return _join_error(member_id, exc.code)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return _join_error(member_id, ErrorCode.INVALID_SESSION_TIMEOUT)
        group = self.groups.get(group_id)
        if group is None:
            if member_id != UNKNOWN_MEMBER_ID:
                return _join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[group_id] = Group(group_id, partition, self.clock_ms())
        if group.consumer is not None and not group.consumer.members:
            self.coordinator.consumer.drop_records(group)
            group.consumer = None  # an emptied consumer-protocol group turns classic again
        assert self.loop is not None
        future: asyncio.Future[JoinGroupResult] = self.loop.create_future()
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
            new_id = f"{group_instance_id if group_instance_id is not None else client_id}-{uuid.uuid4()}"
            if group_instance_id is not None and group_instance_id in group.static_members:
                self._rejoin_static_member(group, group_instance_id, new_id, protocols, rebalance_timeout_ms,
                                           session_timeout_ms, future, version)
            elif group_instance_id is None and version >= 4:
                # KIP-394: hand out the id first, so a member that gives up before its join
                # completes leaves no ghost behind; it must rejoin with the id within its session.
                group.pending_members[new_id] = self.loop.call_later(
                    session_timeout_ms / 1000, self._expire_pending_member, group, new_id)
                future.set_result(_join_error(new_id, ErrorCode.MEMBER_ID_REQUIRED))
            else:
                self._add_member_and_rebalance(group, new_id, group_instance_id, client_id, client_host,
                                               rebalance_timeout_ms, session_timeout_ms, protocol_type, protocols,
                                               future)
        elif member_id in group.pending_members:
            self._add_member_and_rebalance(group, member_id, None, client_id, client_host, rebalance_timeout_ms,
                                           session_timeout_ms, protocol_type, protocols, future)
        else:
            self._join_existing_member(group, member_id, group_instance_id, protocols, rebalance_timeout_ms,
                                       session_timeout_ms, future)
        self.coordinator.forget_if_unused(group)
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
                              future: asyncio.Future[JoinGroupResult]) -> None:
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

    @staticmethod
    def _join_response(group: Group, member_id: str, members: list[JoinGroupResponseMember],
                       leader: str | None = None, skip_assignment: bool = False) -> JoinGroupResult:
        return JoinGroupResult(ErrorCode.NONE, group.generation, group.protocol_type, group.protocol_name,
                               leader if leader is not None else group.leader_id or "", skip_assignment, member_id,
                               members)

    def _add_member_and_rebalance(self, group: Group, member_id: str, instance_id: str | None, client_id: str,
                                  client_host: str, rebalance_timeout: int, session_timeout: int, protocol_type: str,
                                  protocols: Protocols, future: asyncio.Future[JoinGroupResult]) -> None:
        member = Member(member_id, instance_id, client_id, client_host, rebalance_timeout, session_timeout,
                        protocol_type, protocols)
        member.is_new = True
        if group.is_(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True  # extends the initial rebalance delay
        group.add(member, future)
        self.schedule_heartbeat(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group, f"new member {member_id} joined")

    def _update_member_and_rebalance(self, group: Group, member: Member, protocols: Protocols, rebalance_timeout: int,
                                     session_timeout: int, future: asyncio.Future[JoinGroupResult]) -> None:
        # A second JoinGroup while the first still waits (a client retry on another
        # connection): the older one is answered so its connection does not hang forever.
        _complete(member.join_future, _join_error(member.member_id, ErrorCode.REBALANCE_IN_PROGRESS))
        group.update_member(member, protocols, rebalance_timeout, session_timeout, future)
        self._maybe_prepare_rebalance_or_complete_join(group, f"member {member.member_id} rejoined")

    def _rejoin_static_member(self, group: Group, instance_id: str, new_id: str, protocols: Protocols,
                              rebalance_timeout: int, session_timeout: int, future: asyncio.Future[JoinGroupResult],
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
        self.schedule_heartbeat(group, member, session_timeout, restart=True)
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
                    self.schedule_heartbeat(group, member, old_session, restart=True)
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

    # Rebalance phases ----------------------------------------------------------------------------
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
            self.schedule_heartbeat(group, member, member.session_timeout_ms)
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
            _complete(future, SyncGroupResult(error, group.protocol_type if ok else None,
                                              group.protocol_name if ok else None, member.assignment))
            # Any expiry that passed while the member waited was ignored: start a fresh session.
            self.schedule_heartbeat(group, member, member.session_timeout_ms)

    def _member_group(self, group_id: str, member_id: str, instance_id: str | None) -> Group:
        """The live classic group a SyncGroup/Heartbeat names, with the member checked in it."""
        if not group_id:
            raise KafkaError(ErrorCode.INVALID_GROUP_ID, "group id is empty")
        group = self._live_group(group_id)
        group.validate_member(member_id, instance_id)
        return group

    def _live_group(self, group_id: str) -> Group:
        """A group of this coordinator that exists and is not being deleted."""
        self.coordinator.check_local(group_id)
        group = self.groups.get(group_id)
        if group is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"group {group_id!r} does not exist")
        if group.is_(GroupState.DEAD):
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, "group is being deleted")
        return group

    # SyncGroup -----------------------------------------------------------------------------------
    def sync_group(self, group_id: str, member_id: str, generation_id: int, group_instance_id: str | None,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> SyncGroupResult | Awaitable[SyncGroupResult]:
        """SyncGroup; `assignments` (member id -> assignment) count from the leader only, and
        the protocol type and name (v5+, None before) must match the group's when given."""
        try:
            group = self._member_group(group_id, member_id, group_instance_id)
            if generation_id != group.generation:
                raise KafkaError(ErrorCode.ILLEGAL_GENERATION,
                                 f"generation {generation_id}, the group is at {group.generation}")
            for key, asked, current in (("protocol_type", protocol_type, group.protocol_type),
                                        ("protocol_name", protocol_name, group.protocol_name)):
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
            return SyncGroupResult(ErrorCode.NONE, group.protocol_type, group.protocol_name, member.assignment)
        # CompletingRebalance: wait for the leader's assignment.
        assert self.loop is not None
        future: asyncio.Future[SyncGroupResult] = self.loop.create_future()
        _complete(member.sync_future, _sync_error(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_future = future
        self._remove_pending_sync(group, member_id)
        if group.leader_id == member_id:
            assignment = assignments
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

    # Heartbeat / LeaveGroup ----------------------------------------------------------------------
    def heartbeat(self, group_id: str, member_id: str, generation_id: int,
                  group_instance_id: str | None = None) -> ErrorCode:
        try:
            group = self._member_group(group_id, member_id, group_instance_id)
            if generation_id != group.generation:
                raise KafkaError(ErrorCode.ILLEGAL_GENERATION, "stale generation")
        except KafkaError as exc:
            return exc.code
        if group.is_(GroupState.EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = group.members[member_id]
        self.schedule_heartbeat(group, member, member.session_timeout_ms)
        if group.is_(GroupState.PREPARING_REBALANCE):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave_group(self, group_id: str, members: Sequence[MemberIdentity]) -> LeaveGroupResult:
        """LeaveGroup: a group-level error, or a result per member in request order."""
        try:
            group = self._live_group(group_id)
        except KafkaError as exc:
            if exc.code == ErrorCode.UNKNOWN_MEMBER_ID:  # no such group: as Kafka, no such member either
                return LeaveGroupResult(ErrorCode.NONE, [MemberResponse(m.member_id, m.group_instance_id, exc.code)
                                                         for m in members])
            return LeaveGroupResult(exc.code, [])
        results = []
        left = []
        for identity in members:
            member_id, instance_id = identity.member_id, identity.group_instance_id
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
            results.append(MemberResponse(member_id, instance_id, code))
        if left:
            log.info("group %s: members left: %s", group.group_id, ", ".join(left))
            if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, "members left the group")
            elif group.is_(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        self.coordinator.forget_if_unused(group)
        return LeaveGroupResult(ErrorCode.NONE, results)

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

    # Member liveness -----------------------------------------------------------------------------
    def schedule_heartbeat(self, group: Group, member: Member, timeout_ms: int, restart: bool = False) -> None:
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
        self.coordinator.forget_if_unused(group)

    # Timers --------------------------------------------------------------------------------------
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

    def cancel_group_timers(self, group: Group) -> None:
        self._cancel_timer(group, "join_timer")
        self._cancel_timer(group, "sync_timer")
        for timer in group.pending_members.values():
            timer.cancel()
        group.pending_members.clear()

    # Persistence ---------------------------------------------------------------------------------
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
        self.topic.append(group.partition, [(encode_group_metadata_key(group.group_id),
                                               encode_group_metadata_value(value))])

    def restore(self, group_id: str, partition: int, value: GroupMetadataValue) -> Group:
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
            self.schedule_heartbeat(group, member, member.session_timeout_ms)
        if group.members:
            # Restored, not transitioned: the stored generation completed its sync before the
            # record was written, so the group resumes exactly where it was.
            group.previous_state, group.state = GroupState.COMPLETING_REBALANCE, GroupState.STABLE
            if value.leader in group.members:
                group.leader_id = value.leader
        group.subscribed_topics = group.compute_subscribed_topics()
        return group
