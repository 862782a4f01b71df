"""A classic consumer group's state: its members, generation, protocol and committed offsets.

The state machine is Kafka's (GroupMetadata.scala, later GenericGroup.java / ClassicGroup.java):

    Empty ──join──> PreparingRebalance ──all members rejoined, or rebalance timeout──>
    CompletingRebalance ──leader's SyncGroup stored──> Stable ──join / leave / member expiry──>
    PreparingRebalance ...;  a rebalance that ends with no member goes back to Empty;
    Dead: deleted (DeleteGroups, or expired offsets of an Empty group), never left.

  * Empty: no members; the group may still hold committed offsets.
  * PreparingRebalance: members are (re)joining; each JoinGroup waits until the join phase ends.
  * CompletingRebalance: the new generation is chosen; members wait in SyncGroup for the
    leader's assignment.
  * Stable: everyone has an assignment; heartbeats keep members alive.

This module is pure state with its invariants; the ClassicGroupManager (classic.py) drives the transitions, owns
the timers and completes the members' waiting JoinGroup/SyncGroup responses.  Invariants:
  * leader_id is None exactly when there are no members;
  * every static member's instance id maps to its current member id (static_members);
  * supported_protocols[name] counts the members that list protocol `name`;
  * generation only grows (it is persisted, and clients fence commits with it).

Owned by the event loop of the process that hosts the group's `__consumer_offsets` partition;
not thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from enum import Enum

from pyk.coordinator.api import JoinGroupResponseMember, JoinGroupResult, SyncGroupResult
from pyk.coordinator.consumer_group import ConsumerGroup
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE, decode_subscription
from pyk.coordinator.records import OffsetAndMetadata
from pyk.errors import ErrorCode, KafkaError, ProtocolViolation


class GroupState(Enum):
    """Kafka's state names, as ListGroups/DescribeGroups report them."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.PREPARING_REBALANCE: frozenset({GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}

Protocols = list[tuple[str, bytes]]  # (name, metadata) in the member's order of preference

UNKNOWN_MEMBER_ID = ""  # a member id the client does not have yet (or none: an admin/standalone commit)
NO_GENERATION = -1  # a generation the client does not have (or none)


class Member:
    """One member of a classic group.

    join_future / sync_future are set while the member's JoinGroup / SyncGroup waits for the
    rebalance phase to end (the response is parked, as Kafka parks it in purgatory).
    heartbeat_deadline (event-loop time, seconds) is when the member expires unless it is
    waiting in a rebalance phase; `timer` is the loop timer that checks it.
    """

    __slots__ = ("member_id", "group_instance_id", "client_id", "client_host", "rebalance_timeout_ms",
                 "session_timeout_ms", "protocol_type", "protocols", "assignment", "join_future", "sync_future",
                 "is_new", "heartbeat_deadline", "timer")

    def __init__(self, member_id: str, group_instance_id: str | None, client_id: str, client_host: str,
                 rebalance_timeout_ms: int, session_timeout_ms: int, protocol_type: str, protocols: Protocols) -> None:
        self.member_id = member_id
        self.group_instance_id = group_instance_id
        self.client_id = client_id
        self.client_host = client_host
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.protocol_type = protocol_type
        self.protocols = protocols
        self.assignment = b""
        self.join_future: asyncio.Future[JoinGroupResult] | None = None
        self.sync_future: asyncio.Future[SyncGroupResult] | None = None
        # A member that joined but has not yet received a JoinGroup answer: it cannot heartbeat,
        # so it expires after the new-member join timeout instead (KIP-345 era Kafka behaviour).
        self.is_new = False
        self.heartbeat_deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def awaiting_join(self) -> bool:
        return self.join_future is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_future is not None

    def metadata_for(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise KeyError(f"member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, in the same order, with the same metadata (a rejoin that changes nothing)."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        return next(name for name, _ in self.protocols if name in candidates)


class Group:
    """One classic group hosted by this coordinator (see the module docstring)."""

    def __init__(self, group_id: str, partition: int, now_ms: int) -> None:
        self.group_id = group_id
        self.partition = partition  # its __consumer_offsets partition
        self.state = GroupState.EMPTY
        self.previous_state = GroupState.EMPTY
        self.state_timestamp_ms = now_ms  # Kafka's currentStateTimestamp: when the state last changed
        self.generation = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}  # group.instance.id -> member id
        # KIP-394: ids handed out with MEMBER_ID_REQUIRED, each with the timer that expires it.
        self.pending_members: dict[str, asyncio.TimerHandle] = {}
        self.pending_sync: set[str] = set()  # members of this generation yet to send SyncGroup
        self.supported_protocols: Counter[str] = Counter()
        self.new_member_added = False  # extends the initial rebalance delay
        self.offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
        # TxnOffsetCommit offsets awaiting their transaction's marker, by producer id
        self.pending_txn_offsets: dict[int, dict[tuple[str, int], OffsetAndMetadata]] = {}
        self.subscribed_topics: set[str] | None = None  # None: unknown (not a consumer group)
        self.join_timer: asyncio.TimerHandle | None = None
        self.sync_timer: asyncio.TimerHandle | None = None
        # Set while the group speaks the consumer protocol (KIP-848, consumer_group.py); a group
        # is either classic (members above) or consumer, never both at once.
        self.consumer: ConsumerGroup | None = None

    # State ----------------------------------------------------------------------------------
    def is_(self, state: GroupState) -> bool:
        return self.state is state

    def transition(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise AssertionError(f"group {self.group_id}: illegal transition {self.state.value} -> {state.value}")
        self.previous_state = self.state
        self.state = state
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS[GroupState.PREPARING_REBALANCE]

    @property
    def is_empty(self) -> bool:
        return not self.members and not self.pending_members and (self.consumer is None or not self.consumer.members)

    # Members --------------------------------------------------------------------------------
    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def add(self, member: Member, join_future: asyncio.Future[JoinGroupResult] | None) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.remove_pending(member.member_id)
        for name, _ in member.protocols:
            self.supported_protocols[name] += 1
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        member.join_future = join_future

    def remove_pending(self, member_id: str) -> bool:
        timer = self.pending_members.pop(member_id, None)
        if timer is None:
            return False
        timer.cancel()
        return True

    def remove(self, member_id: str) -> Member | None:
        self.remove_pending(member_id)
        self.pending_sync.discard(member_id)
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        for name, _ in member.protocols:
            self.supported_protocols[name] -= 1
            if not self.supported_protocols[name]:
                del self.supported_protocols[name]
        if member.group_instance_id is not None and self.static_members.get(member.group_instance_id) == member_id:
            del self.static_members[member.group_instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def update_member(self, member: Member, protocols: Protocols, rebalance_timeout_ms: int,
                      session_timeout_ms: int, join_future: asyncio.Future[JoinGroupResult] | None) -> None:
        for name, _ in member.protocols:
            self.supported_protocols[name] -= 1
            if not self.supported_protocols[name]:
                del self.supported_protocols[name]
        for name, _ in protocols:
            self.supported_protocols[name] += 1
        member.protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.join_future = join_future

    def replace_static_member(self, instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """The member with `instance_id` continues under `new_member_id` (a static member restarted).

        The old id's waiting JoinGroup/SyncGroup, if any, is answered FENCED_INSTANCE_ID by the
        caller (it gets the futures back through the returned member before they are cleared).
        """
        member = self.members.pop(old_member_id)
        member.member_id = new_member_id
        self.members[new_member_id] = member
        self.static_members[instance_id] = new_member_id
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        if old_member_id in self.pending_sync:
            self.pending_sync.discard(old_member_id)
            self.pending_sync.add(new_member_id)
        return member

    def validate_member(self, member_id: str, instance_id: str | None) -> None:
        """Kafka's validateMember: a static member must use its current member id (else it is
        a fenced older incarnation); a dynamic one must be known."""
        if instance_id is not None:
            current = self.static_members.get(instance_id)
            if current is None:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"no member has group.instance.id {instance_id!r}")
            if current != member_id:
                raise KafkaError(ErrorCode.FENCED_INSTANCE_ID,
                                 f"group.instance.id {instance_id!r} now belongs to member {current}, not {member_id}")
        elif member_id not in self.members:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id!r} is not in group {self.group_id!r}")

    # Rebalance bookkeeping ---------------------------------------------------------------------
    def awaiting_join_count(self) -> int:
        return sum(1 for m in self.members.values() if m.join_future is not None)

    def has_all_members_joined(self) -> bool:
        return not self.pending_members and self.awaiting_join_count() == len(self.members)

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if m.join_future is None]

    def maybe_elect_new_joined_leader(self) -> bool:
        """Makes sure the leader is a member that rejoined; False when nobody rejoined."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        """Kafka's supportsProtocols: a new group takes any non-empty type; a live group needs the
        same type and one protocol every current member also supports."""
        if self.is_(GroupState.EMPTY) and not self.members:
            return bool(protocol_type) and bool(names)
        return (self.protocol_type == protocol_type
                and any(self.supported_protocols.get(n, 0) == len(self.members) for n in names))

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer (ties: the leader's order)."""
        candidates = {name for name, count in self.supported_protocols.items() if count == len(self.members)}
        if not candidates:
            raise AssertionError(f"group {self.group_id}: no protocol supported by all members")
        votes = Counter(m.vote(candidates) for m in self.members.values())
        leader = self.members[self.leader_id] if self.leader_id is not None else next(iter(self.members.values()))
        order = {name: i for i, (name, _) in enumerate(leader.protocols)}
        return max(votes, key=lambda name: (votes[name], -order.get(name, len(order))))

    def init_next_generation(self, now_ms: int) -> None:
        self.generation += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition(GroupState.EMPTY, now_ms)
        self.subscribed_topics = self.compute_subscribed_topics()
        self.pending_sync.clear()

    def compute_subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to, for consumer groups; None when unknowable."""
        if self.protocol_type != PROTOCOL_TYPE or self.protocol_name is None:
            return set() if not self.members and self.protocol_type == PROTOCOL_TYPE else None
        topics: set[str] = set()
        try:
            for member in self.members.values():
                topics.update(decode_subscription(member.metadata_for(self.protocol_name)).topics)
        except (ProtocolViolation, KeyError):
            return None  # a client with its own encoding: do not guess
        return topics

    def is_subscribed(self, topic: str) -> bool:
        return self.subscribed_topics is not None and topic in self.subscribed_topics

    def current_member_metadata(self) -> list[JoinGroupResponseMember]:
        """The members list of the leader's JoinGroup response (metadata for the chosen protocol)."""
        assert self.protocol_name is not None
        return [JoinGroupResponseMember(m.member_id, m.group_instance_id, m.metadata_for(self.protocol_name))
                for m in self.members.values()]
