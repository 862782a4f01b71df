"""ConsumerGroupManager: the consumer group protocol of KIP-848 (ConsumerGroupHeartbeat).

The state and reconciliation of a consumer-protocol group (epochs, server-side assignor,
revocations) live in consumer_group.py, pure state; this module drives it: it looks the
subscribed topics up, runs each member's session (group.consumer.session.timeout.ms) and
revocation (the member's rebalance timeout) timer, and persists the group.  A group is classic
or consumer, never both: a heartbeat for a classic group with members gets GROUP_ID_NOT_FOUND,
and an emptied group may switch.

Persistence: a consumer group's state is written to `__consumer_offsets` as Kafka's
consumer-group records after every change (only the records that changed;
consumer_group_records.py) and replayed at load: after a coordinator restart each member
carries on at its epoch and assignment, and one that does not come back expires with its
session timeout.  Owned by the GroupCoordinator, on its event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from pyk.coordinator.api import ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResult
from pyk.coordinator.consumer_group import ConsumerGroup, ConsumerMember, MemberState
from pyk.coordinator.consumer_group_records import group_records, restore_group
from pyk.coordinator.group import Group, GroupState
from pyk.coordinator.records import (
    CONSUMER_GROUP_MEMBER_RECORDS,
    ConsumerGroupKey,
    ConsumerGroupValue,
    encode_consumer_group_key,
)
from pyk.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from pyk.coordinator.coordinator import GroupCoordinator

log = logging.getLogger("pyk.coordinator")


class ConsumerGroupManager:
    """The KIP-848 driver for the groups of one GroupCoordinator (see the module docstring).

    Lifecycle: made by its GroupCoordinator, whose `groups`, clock, event loop and
    `__consumer_offsets` partitions it shares; `restore` re-arms a loaded group's members,
    `stop_group` cancels their timers.  Not thread-safe: the coordinator's event loop only.
    """

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.groups = coordinator.groups
        self.topic = coordinator.topic
        self.host = coordinator.host
        self.clock_ms = coordinator.clock_ms
        config = coordinator.host.config
        self.consumer_session_timeout_ms: int = config["group.consumer.session.timeout.ms"]
        self.consumer_heartbeat_interval_ms: int = config["group.consumer.heartbeat.interval.ms"]
        self.consumer_max_size: int = config["group.consumer.max.size"]
        # (group, member) of consumer-protocol members loaded at start-up that have not
        # heartbeated since: their first heartbeat is logged (a resumed member, not a rejoin).
        self._loaded_members: set[tuple[str, str]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.coordinator.loop

    def stop_group(self, group: Group) -> None:
        if group.consumer is not None:
            for member in group.consumer.members.values():
                self._cancel_consumer_timer(member)

    # Load ----------------------------------------------------------------------------------------
    def restore(self, group: Group, records: dict[ConsumerGroupKey, ConsumerGroupValue]) -> None:
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

    # ConsumerGroupHeartbeat ----------------------------------------------------------------------
    def heartbeat(self, request: ConsumerGroupHeartbeatRequest, client_id: str = "",
                  client_host: str = "") -> ConsumerGroupHeartbeatResult:
        """One heartbeat of a consumer-protocol member (see consumer_group.py for the state it
        moves; this method adds placement, topics, timers and the heartbeat interval)."""
        group_id = request.group_id
        created = False
        try:
            if not group_id:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "group id is empty")
            partition = self.coordinator.check_local(group_id)
            group = self.groups.get(group_id)
            if group is None:
                if request.member_epoch != 0:
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
            result, member, removed = consumer.heartbeat(request, self._topic_lookup, lambda: str(uuid.uuid4()),
                                                       client_id, client_host, self._regex_candidates)
        except KafkaError as exc:
            log.debug("consumer group %s: heartbeat of %s refused: %s", group_id, request.member_id, exc)
            if created:
                self.coordinator.forget_if_unused(self.groups[group_id])
            return ConsumerGroupHeartbeatResult(exc.code, str(exc), None, 0)  # Kafka's defaults in an error
        for old in removed:
            self._cancel_consumer_timer(old)
            self._loaded_members.discard((group_id, old.member_id))
        # Every member's target when the assignment was recomputed, else only this member's records.
        self._store_consumer_group(group, None if consumer.assignment_epoch != assignment_epoch
                                   else [result.member_id or ""], removed)
        if member is not None:
            self._arm_consumer_timer(group, member)
            if (group_id, member.member_id) in self._loaded_members:
                self._loaded_members.discard((group_id, member.member_id))
                if request.member_epoch > 0:
                    log.info("consumer group %s: member %s resumed at epoch %d after the group was loaded",
                             group_id, member.member_id, member.epoch)
        elif not consumer.members:
            self.coordinator.forget_if_unused(group)
        after = consumer.state_name
        if after != before:
            log.info("consumer group %s: %s -> %s (group epoch %d)", group_id, before, after, consumer.group_epoch)
        # A member that left gets no interval (0), as in Kafka's answer to a leave.
        return replace(result, heartbeat_interval_ms=self.consumer_heartbeat_interval_ms if member is not None else 0)

    def _regex_candidates(self) -> list[str]:
        """The topics a regex subscription may match: every topic but the internal ones."""
        return [info.name for info in self.host.user_topics()]

    def _topic_lookup(self, name: str) -> tuple[uuid.UUID, int] | None:
        info = self.host.topic(name)
        return (info.topic_id, info.partitions) if info is not None else None

    # Member timers -------------------------------------------------------------------------------
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
            self.coordinator.forget_if_unused(group)

    # Persistence ---------------------------------------------------------------------------------
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
            self.topic.append(group.partition, [(encode_consumer_group_key(k), v) for k, v in changed])
        except KafkaError as exc:
            log.warning("consumer group %s: writing %d records failed: %s", group.group_id, len(changed), exc)
            return
        for key, value in changed:
            if value is None:
                consumer.written.pop(key, None)
            else:
                consumer.written[key] = value

    @staticmethod
    def tombstones(group: Group) -> list[tuple[bytes, bytes | None]]:
        """Tombstones for every consumer-protocol record the group has on disk."""
        if group.consumer is None:
            return []
        return [(encode_consumer_group_key(key), None) for key in group.consumer.written]

    def drop_records(self, group: Group) -> None:
        """The group stops being a consumer-protocol group: its records are tombstoned."""
        tombstones = self.tombstones(group)
        if not tombstones:
            return
        assert group.consumer is not None
        try:
            self.topic.append(group.partition, tombstones)
        except KafkaError as exc:
            log.warning("consumer group %s: tombstoning its records failed: %s", group.group_id, exc)
            return
        group.consumer.written.clear()
