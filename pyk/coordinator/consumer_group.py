"""A consumer-protocol group's state (KIP-848): member epochs, the target assignment the broker
computes, and each member's reconciliation towards it.

KIP-848 moves assignment into the broker.  A member heartbeats (ConsumerGroupHeartbeat) with
its subscription and the partitions it owns; the coordinator answers with the member's epoch
and, when it changed, the partitions the member may own now.  Three epochs drive it, as in
Kafka's GroupMetadataManager / CurrentAssignmentBuilder:

  * group epoch: bumped whenever what the assignment depends on changes (a member joins,
    leaves or changes its subscription; a subscribed topic appears or grows);
  * assignment epoch: the group epoch the target assignment was computed for; the target is
    recomputed (by the assignor below) when the group epoch runs ahead of it;
  * member epoch: the assignment epoch the member has converged to.  It moves to the
    assignment epoch only once the member has given up every partition the target takes
    from it.

Reconciliation (`_reconcile`) is incremental: a member keeps the partitions it owns that its
target still lists, gives up the others first (state UNREVOKED_PARTITIONS: its epoch stays
put and its assignment shrinks to what it keeps), and receives a partition of its target only
when no other member holds it any more, neither assigned nor pending revocation (state
UNRELEASED_PARTITIONS until then).  So a partition moving from A to B is never owned by both:
B gets it only after A's heartbeat shows that A no longer owns it.

Subscriptions are topic names, a regular expression (v1+; Python `re`, matched against the
whole name of every non-internal topic, re-resolved at each heartbeat), or both.  A pattern that
does not compile is refused with INVALID_REGULAR_EXPRESSION and changes nothing.

Static members (instance id): leaving with epoch -2 keeps the member, and its partitions, in
the group until its session expires; a member joining with the same instance id takes them
over without a rebalance.  Joining with the instance id of a member that has not left is
refused with UNRELEASED_INSTANCE_ID.

The assignor is "uniform" (Kafka's default server assignor name; "range" is accepted as an
alias): every partition of the subscribed topics, balanced over the members that subscribe to
its topic, sticky (a member keeps what its previous target gave it up to its fair share).
With identical subscriptions the counts differ by at most one; with different subscriptions
it balances greedily (fewest partitions first, ties by member id) and makes no promise.

This module is pure state: no timers, no I/O, no clock.  The ConsumerGroupManager (consumer.py) owns session
and revocation timers, looks topics up, and persists the state as Kafka's consumer-group
records (consumer_group_records.py), so members resume a restarted coordinator where they were.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterable
from enum import Enum

from pyk.coordinator.api import (
    Assignment,
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResult,
    ConsumerGroupMember,
    DescribedConsumerGroup,
    DescribedTopicPartitions,
    TopicPartitions,
)
from pyk.coordinator.records import ConsumerGroupKey
from pyk.errors import ErrorCode, KafkaError

LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2
JOIN_EPOCH = 0
ASSIGNORS = ("uniform", "range")
CONSUMER_MEMBER_TYPE = 1  # ConsumerGroupDescribe v1 (KIP-1099): 0 classic, 1 consumer protocol

Partitions = dict[uuid.UUID, frozenset[int]]  # topic id -> partition indexes
TopicLookup = Callable[[str], "tuple[uuid.UUID, int] | None"]  # name -> (topic id, partition count)


class MemberState(Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class ConsumerMember:
    """One member of a consumer-protocol group.

    `assigned` is what the member may own now (what the last response told it); `revoking`
    is what it was told to give up and has not yet been seen to release.  Liveness fields
    (deadlines in event-loop seconds, the timer) belong to the coordinator.
    """

    __slots__ = ("member_id", "instance_id", "rack_id", "client_id", "client_host", "epoch", "previous_epoch",
                 "state", "subscribed", "regex", "matched", "server_assignor", "rebalance_timeout_ms", "assigned",
                 "revoking",
                 "session_deadline", "revoke_deadline", "timer")

    def __init__(self, member_id: str, instance_id: str | None = None, client_id: str = "",
                 client_host: str = "") -> None:
        self.member_id = member_id
        self.instance_id = instance_id
        self.rack_id: str | None = None
        self.client_id = client_id
        self.client_host = client_host
        self.epoch = JOIN_EPOCH
        self.previous_epoch = LEAVE_EPOCH
        self.state = MemberState.STABLE
        self.subscribed: tuple[str, ...] = ()  # topic names, as the member sent them
        self.regex: re.Pattern[str] | None = None  # a regex subscription (v1+), matched in full
        self.matched: tuple[str, ...] = ()  # the topics the regex matches, as of the last heartbeat
        self.server_assignor: str | None = None
        self.rebalance_timeout_ms = 300_000
        self.assigned: Partitions = {}
        self.revoking: Partitions = {}
        self.session_deadline = 0.0
        self.revoke_deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    @property
    def topics(self) -> frozenset[str]:
        """What the member subscribes to: its topic names and what its regex matches."""
        return frozenset(self.subscribed) | frozenset(self.matched)

    def holds(self) -> set[tuple[uuid.UUID, int]]:
        """Every partition this member may still be consuming (assigned or being revoked)."""
        return _flatten(self.assigned) | _flatten(self.revoking)


def _flatten(parts: Partitions) -> set[tuple[uuid.UUID, int]]:
    return {(topic, p) for topic, ps in parts.items() for p in ps}


def _group(pairs: set[tuple[uuid.UUID, int]]) -> Partitions:
    out: dict[uuid.UUID, set[int]] = {}
    for topic, p in pairs:
        out.setdefault(topic, set()).add(p)
    return {topic: frozenset(ps) for topic, ps in out.items()}


def owned_from_request(topic_partitions: list[TopicPartitions] | None) -> set[tuple[uuid.UUID, int]] | None:
    if topic_partitions is None:
        return None
    return {(t.topic_id, p) for t in topic_partitions for p in t.partitions}


def topic_partitions(parts: Partitions) -> list[TopicPartitions]:
    """`parts` as the protocol lists them: by topic id, partitions sorted, empty topics left out."""
    return [TopicPartitions(topic, sorted(ps)) for topic, ps in sorted(parts.items(), key=lambda kv: kv[0].bytes)
            if ps]


class ConsumerGroup:
    """The consumer-protocol state of one group (see the module docstring)."""

    def __init__(self, group_id: str, max_size: int = 2**31 - 1) -> None:
        self.group_id = group_id
        self.max_size = max_size
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.target: dict[str, Partitions] = {}  # member id -> its target assignment
        # name -> (topic id, partitions) of every subscribed topic, as of the last heartbeat:
        # a change (topic created, deleted, grown) bumps the group epoch.
        self.topology: dict[str, tuple[uuid.UUID, int] | None] = {}
        # The group's records as last written to __consumer_offsets (record key -> value bytes),
        # kept by the coordinator so a state change writes only the records it changed.
        self.written: dict[ConsumerGroupKey, bytes] = {}

    # State ----------------------------------------------------------------------------------
    @property
    def state_name(self) -> str:
        """Kafka's ConsumerGroupState names."""
        if not self.members:
            return "Empty"
        if self.group_epoch > self.assignment_epoch:
            return "Assigning"
        if any(m.epoch != self.assignment_epoch or m.state is not MemberState.STABLE
               for m in self.members.values() if m.epoch != STATIC_LEAVE_EPOCH):
            return "Reconciling"
        return "Stable"

    def subscribed_topics(self) -> set[str]:
        return {name for m in self.members.values() for name in m.topics}

    def topic_names(self) -> dict[uuid.UUID, str]:
        """topic id -> name of every subscribed topic that exists (as of the last heartbeat)."""
        return {found[0]: name for name, found in self.topology.items() if found is not None}

    def describe(self) -> DescribedConsumerGroup:
        """The group as ConsumerGroupDescribe reports it."""
        names = self.topic_names()

        def assignment(parts: Partitions) -> list[DescribedTopicPartitions]:
            return [DescribedTopicPartitions(t.topic_id, names[t.topic_id], t.partitions)
                    for t in topic_partitions(parts) if t.topic_id in names]

        members = [ConsumerGroupMember(
            m.member_id, m.instance_id, m.rack_id, m.epoch, m.client_id, m.client_host, list(m.subscribed),
            m.regex.pattern if m.regex is not None else "", assignment(m.assigned),  # Kafka's "" for none
            assignment(self.target.get(m.member_id, {})), CONSUMER_MEMBER_TYPE) for m in self.members.values()]
        return DescribedConsumerGroup(ErrorCode.NONE, None, self.group_id, self.state_name, self.group_epoch,
                                      self.assignment_epoch, ASSIGNORS[0], members)

    def _bump(self) -> None:
        self.group_epoch += 1

    # Heartbeat ------------------------------------------------------------------------------
    def heartbeat(self, request: ConsumerGroupHeartbeatRequest, lookup: TopicLookup, new_member_id: Callable[[], str],
                  client_id: str = "", client_host: str = "", topic_names: Callable[[], Iterable[str]] = tuple,
                  ) -> tuple[ConsumerGroupHeartbeatResult, ConsumerMember | None, list[ConsumerMember]]:
        """Applies one ConsumerGroupHeartbeat: (its result, the member now, members removed).

        `lookup` gives a topic's id and partition count; `topic_names` lists the topics a regex
        subscription may match (not the internal ones).

        Raises KafkaError for a request the member must act on (fenced, unknown, ...).
        """
        member_id = request.member_id
        epoch = request.member_epoch
        instance_id = request.instance_id
        owned = owned_from_request(request.topic_partitions)
        removed: list[ConsumerMember] = []
        assignor = request.server_assignor
        if assignor is not None and assignor not in ASSIGNORS:
            raise KafkaError(ErrorCode.UNSUPPORTED_ASSIGNOR, f"server assignor {assignor!r}: pyk has {', '.join(ASSIGNORS)}")

        regex = request.subscribed_topic_regex
        if regex:  # refused before anything changes (a joining member is not created)
            try:
                re.compile(regex)
            except re.error as exc:
                # Kafka's throwIfRegularExpressionIsInvalid (RE2/J syntax there; see
                # docs/compatibility.md for where Python's re differs).
                raise KafkaError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                                 f"SubscribedTopicRegex `{regex}` is not a valid regular expression: {exc}") from None

        if epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
            return self._leave(member_id, instance_id, epoch, removed), None, removed

        if epoch == JOIN_EPOCH:
            if request.subscribed_topic_names is None and not request.subscribed_topic_regex:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "a joining member must send its subscription")
            member, fresh = self._join(member_id or new_member_id(), instance_id, client_id, client_host, removed)
        else:
            known = self.members.get(member_id)
            if known is None:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id} is not in group {self.group_id}")
            member = known
            self._check_epoch(member, epoch, owned)
            fresh = False

        before = member.assigned
        subscription_changed = self._update_subscription(member, request) or fresh
        # One bump for everything this heartbeat changed, as Kafka's consumerGroupHeartbeat does.
        if self._refresh_topology(lookup, topic_names) or subscription_changed:
            self._bump()
        if self.group_epoch > self.assignment_epoch:
            self._assign(lookup)
        self._reconcile(member, owned)

        resend = owned is not None and owned != _flatten(member.assigned)
        assignment = (Assignment(topic_partitions(member.assigned))
                      if epoch == JOIN_EPOCH or member.assigned != before or resend else None)
        return (ConsumerGroupHeartbeatResult(ErrorCode.NONE, None, member.member_id, member.epoch, assignment=assignment),
                member, removed)

    def _join(self, member_id: str, instance_id: str | None, client_id: str, client_host: str,
              removed: list[ConsumerMember]) -> tuple[ConsumerMember, bool]:
        """(member, is new to the group) for a heartbeat with epoch 0."""
        if instance_id is not None and instance_id in self.static_members:
            old = self.members[self.static_members[instance_id]]
            if old.member_id == member_id:
                pass  # the same incarnation rejoining: handled below like any known member
            elif old.epoch != STATIC_LEAVE_EPOCH:
                raise KafkaError(ErrorCode.UNRELEASED_INSTANCE_ID,
                                 f"instance id {instance_id} is still used by member {old.member_id}")
            else:
                # KIP-848 static rejoin: the new incarnation takes the old one's place and
                # partitions; the group epoch does not move (nothing the assignment uses changed).
                member = ConsumerMember(member_id, instance_id, client_id, client_host)
                member.subscribed, member.server_assignor = old.subscribed, old.server_assignor
                member.regex, member.matched = old.regex, old.matched
                member.rebalance_timeout_ms = old.rebalance_timeout_ms
                member.assigned = old.assigned
                del self.members[old.member_id]
                removed.append(old)
                self.members[member_id] = member
                self.static_members[instance_id] = member_id
                if old.member_id in self.target:
                    self.target[member_id] = self.target.pop(old.member_id)
                return member, False
        rejoining = self.members.get(member_id)
        if rejoining is not None:
            member = rejoining
            # A member rejoining (after fencing, or a lost response) owns nothing any more; it
            # keeps its target, so it gets back whatever is still free of it.
            member.epoch, member.previous_epoch = JOIN_EPOCH, LEAVE_EPOCH
            member.state = MemberState.STABLE
            member.assigned, member.revoking = {}, {}
            member.revoke_deadline = None
            return member, False
        if len(self.members) >= self.max_size:
            raise KafkaError(ErrorCode.GROUP_MAX_SIZE_REACHED, f"group {self.group_id} has {self.max_size} members")
        member = ConsumerMember(member_id, instance_id, client_id, client_host)
        self.members[member_id] = member
        if instance_id is not None:
            self.static_members[instance_id] = member_id
        return member, True

    def _check_epoch(self, member: ConsumerMember, epoch: int, owned: set[tuple[uuid.UUID, int]] | None) -> None:
        """Kafka's throwIfMemberEpochIsInvalid: a member one epoch behind is accepted when what it
        owns is within its assignment (it lost the response that moved it on)."""
        if epoch == member.epoch:
            return
        if (epoch < member.epoch and epoch == member.previous_epoch and owned is not None
                and owned <= _flatten(member.assigned)):
            return
        raise KafkaError(ErrorCode.FENCED_MEMBER_EPOCH,
                         f"member {member.member_id} sent epoch {epoch}, its epoch is {member.epoch}")

    @staticmethod
    def _update_subscription(member: ConsumerMember, request: ConsumerGroupHeartbeatRequest) -> bool:
        """Takes the fields the request carries (null: unchanged); True if the subscription changed."""
        changed = False
        names = request.subscribed_topic_names
        if names is not None and tuple(sorted(set(names))) != member.subscribed:
            member.subscribed = tuple(sorted(set(names)))
            changed = True
        regex = request.subscribed_topic_regex
        if regex is not None and regex != (member.regex.pattern if member.regex is not None else ""):
            if regex == "":  # an empty regex clears it (librdkafka sends "" with plain names)
                member.regex, member.matched = None, ()
            else:
                member.regex = re.compile(regex)  # checked in heartbeat()
            changed = True
        assignor = request.server_assignor
        if assignor is not None and assignor != member.server_assignor:
            member.server_assignor = assignor
        if request.rebalance_timeout_ms >= 0:
            member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        return changed

    def _refresh_topology(self, lookup: TopicLookup, topic_names: Callable[[], Iterable[str]]) -> bool:
        """Re-resolves regex subscriptions; whether any subscribed topic appeared, vanished or
        changed its partition count since the last heartbeat (the group epoch must then move)."""
        regexes = [m for m in self.members.values() if m.regex is not None]
        if regexes:
            names = sorted(topic_names())
            for m in regexes:
                assert m.regex is not None
                m.matched = tuple(n for n in names if m.regex.fullmatch(n))
        topology = {name: lookup(name) for name in sorted(self.subscribed_topics())}
        if topology == self.topology:
            return False
        self.topology = topology
        return True

    def _leave(self, member_id: str, instance_id: str | None, epoch: int,
               removed: list[ConsumerMember]) -> ConsumerGroupHeartbeatResult:
        member = self.members.get(member_id)
        if member is None and instance_id is not None and instance_id in self.static_members:
            member = self.members[self.static_members[instance_id]]
        if member is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"member {member_id} is not in group {self.group_id}")
        if epoch == STATIC_LEAVE_EPOCH and member.instance_id is not None:
            # Stays, partitions and all, until its session expires or its instance id returns.
            member.previous_epoch, member.epoch = member.epoch, STATIC_LEAVE_EPOCH
            member.revoke_deadline = None
        else:
            self.remove(member.member_id)
            removed.append(member)
        return ConsumerGroupHeartbeatResult(ErrorCode.NONE, None, member.member_id, epoch)

    def remove(self, member_id: str) -> ConsumerMember | None:
        """Removes a member (left, fenced, expired); its partitions become free at once."""
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
            del self.static_members[member.instance_id]
        self.target.pop(member_id, None)
        self._bump()
        return member

    # Assignment -----------------------------------------------------------------------------
    def _assign(self, lookup: TopicLookup) -> None:
        self.target = uniform_assign(self.members, self.target, lookup)
        self.assignment_epoch = self.group_epoch

    def _reconcile(self, member: ConsumerMember, owned: set[tuple[uuid.UUID, int]] | None) -> None:
        """Kafka's CurrentAssignmentBuilder: moves `member` one step towards its target."""
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if owned is None or owned & _flatten(member.revoking):
                return  # still owns (or has not said) partitions it must give up
            member.revoking = {}
            member.revoke_deadline = None
        elif member.state is MemberState.STABLE and member.epoch == self.assignment_epoch:
            return
        assigned = _flatten(member.assigned)
        target = _flatten(self.target.get(member.member_id, {}))
        kept = assigned & target
        revoke = assigned - target
        pending = target - assigned
        held = set().union(*(m.holds() for m in self.members.values() if m is not member))
        gained = pending - held
        if revoke and (owned is None or owned & revoke):
            member.assigned, member.revoking = _group(kept), _group(revoke)
            member.state = MemberState.UNREVOKED_PARTITIONS
            return
        member.assigned, member.revoking = _group(kept | gained), {}
        if member.epoch != self.assignment_epoch:
            member.previous_epoch, member.epoch = member.epoch, self.assignment_epoch
        member.state = MemberState.UNRELEASED_PARTITIONS if pending - gained else MemberState.STABLE


def uniform_assign(members: dict[str, ConsumerMember], previous: dict[str, Partitions],
                   lookup: TopicLookup) -> dict[str, Partitions]:
    """The target assignment: every partition of every subscribed topic to one subscriber,
    sticky to `previous`, balanced (see the module docstring)."""
    ids = sorted(members)
    if not ids:
        return {}
    subscribers: dict[uuid.UUID, set[str]] = {}
    partitions: list[tuple[uuid.UUID, int]] = []
    for name in sorted({n for m in members.values() for n in m.topics}):
        found = lookup(name)
        if found is None:
            continue
        topic_id, count = found
        subscribers[topic_id] = {mid for mid in ids if name in members[mid].topics}
        partitions.extend((topic_id, p) for p in range(count))
    total = len(partitions)
    floor, extra = divmod(total, len(ids))
    out: dict[str, list[tuple[uuid.UUID, int]]] = {mid: [] for mid in ids}
    taken: set[tuple[uuid.UUID, int]] = set()
    # Sticky: each member keeps what it had, up to its share; `extra` members may keep one more.
    for mid in ids:
        keep = sorted((tp for tp in _flatten(previous.get(mid, {}))
                       if tp[0] in subscribers and mid in subscribers[tp[0]] and tp not in taken),
                      key=lambda tp: (tp[0].bytes, tp[1]))
        share = floor
        if extra and len(keep) > floor:
            share, extra = floor + 1, extra - 1
        for tp in keep[:share]:
            out[mid].append(tp)
            taken.add(tp)
    for tp in partitions:
        if tp in taken:
            continue
        eligible = [mid for mid in ids if mid in subscribers[tp[0]]]
        if eligible:
            mid = min(eligible, key=lambda m: (len(out[m]), m))
            out[mid].append(tp)
    return {mid: _group(set(tps)) for mid, tps in out.items()}
