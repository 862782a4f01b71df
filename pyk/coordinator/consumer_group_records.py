"""A KIP-848 consumer group as records of `__consumer_offsets`, and back.

The record types (3-8) and their encodings are records.py's; this module maps a ConsumerGroup
onto them (`group_records`) and rebuilds one from what a partition's replay left
(`restore_group`), so a restarted coordinator resumes every member at the epoch, assignment and
reconciliation state it had: a member heartbeating with its member id and epoch carries on
without rejoining.  What is written and when is the coordinator's business (coordinator.py
writes the records that changed after each state change, by comparing with what it wrote last).

Kafka's MemberState bytes (CurrentMemberAssignmentValue.state): 0 stable, 1 unrevoked
partitions, 2 unreleased partitions.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

from pyk.coordinator.consumer_group import ConsumerGroup, ConsumerMember, MemberState, Partitions
from pyk.coordinator.records import (
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    CONSUMER_GROUP_MEMBER_METADATA,
    CONSUMER_GROUP_METADATA,
    CONSUMER_GROUP_PARTITION_METADATA,
    CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
    CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
    ConsumerGroupKey,
    ConsumerGroupValue,
    ConsumerMemberAssignment,
    ConsumerMemberMetadata,
    TopicPartitions,
    encode_consumer_group_value,
)

log = logging.getLogger("pyk.coordinator")

_STATE_CODES = {MemberState.STABLE: 0, MemberState.UNREVOKED_PARTITIONS: 1, MemberState.UNRELEASED_PARTITIONS: 2}
_STATES = {code: state for state, code in _STATE_CODES.items()}


def _to_records(parts: Partitions) -> TopicPartitions:
    return [(topic, sorted(ps)) for topic, ps in sorted(parts.items(), key=lambda kv: kv[0].bytes) if ps]


def _from_records(parts: TopicPartitions) -> Partitions:
    return {topic: frozenset(ps) for topic, ps in parts if ps}


def group_records(group: ConsumerGroup, member_ids: Iterable[str] | None = None) -> dict[ConsumerGroupKey, bytes]:
    """The encoded records of the group's own state and of the members `member_ids` (every
    member when None; ids no longer in the group are left out)."""
    gid = group.group_id
    topics = [(found[0], name, found[1]) for name, found in sorted(group.topology.items()) if found is not None]
    out = {
        ConsumerGroupKey(CONSUMER_GROUP_METADATA, gid): encode_consumer_group_value(CONSUMER_GROUP_METADATA,
                                                                                    group.group_epoch),
        ConsumerGroupKey(CONSUMER_GROUP_PARTITION_METADATA, gid): encode_consumer_group_value(
            CONSUMER_GROUP_PARTITION_METADATA, topics),
        ConsumerGroupKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA, gid): encode_consumer_group_value(
            CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA, group.assignment_epoch),
    }
    for mid in group.members if member_ids is None else member_ids:
        m = group.members.get(mid)
        if m is None:
            continue
        meta = ConsumerMemberMetadata(m.instance_id, m.rack_id, m.client_id, m.client_host, list(m.subscribed),
                                      m.regex.pattern if m.regex is not None else None, m.rebalance_timeout_ms,
                                      m.server_assignor)
        current = ConsumerMemberAssignment(m.epoch, m.previous_epoch, _STATE_CODES[m.state], _to_records(m.assigned),
                                           _to_records(m.revoking))
        out[ConsumerGroupKey(CONSUMER_GROUP_MEMBER_METADATA, gid, mid)] = encode_consumer_group_value(
            CONSUMER_GROUP_MEMBER_METADATA, meta)
        out[ConsumerGroupKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER, gid, mid)] = encode_consumer_group_value(
            CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER, _to_records(group.target.get(mid, {})))
        out[ConsumerGroupKey(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, gid, mid)] = encode_consumer_group_value(
            CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, current)
    return out


def restore_group(group_id: str, records: dict[ConsumerGroupKey, ConsumerGroupValue], max_size: int) -> ConsumerGroup:
    """The group the replayed records describe.  A member needs its metadata record; one whose
    current-assignment record is missing (never written) starts from epoch 0 and must rejoin."""
    group = ConsumerGroup(group_id, max_size)
    epoch = records.get(ConsumerGroupKey(CONSUMER_GROUP_METADATA, group_id))
    group.group_epoch = epoch if isinstance(epoch, int) else 0
    assignment_epoch = records.get(ConsumerGroupKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA, group_id))
    group.assignment_epoch = assignment_epoch if isinstance(assignment_epoch, int) else 0
    stored = records.get(ConsumerGroupKey(CONSUMER_GROUP_PARTITION_METADATA, group_id))
    known: dict[str, tuple[uuid.UUID, int]] = {}
    if isinstance(stored, list):
        known = {name: (topic_id, count) for topic_id, name, count in stored}  # type: ignore[misc]
    for key, value in records.items():
        if key.type != CONSUMER_GROUP_MEMBER_METADATA or not isinstance(value, ConsumerMemberMetadata):
            continue
        mid = key.member_id or ""
        m = ConsumerMember(mid, value.instance_id, value.client_id, value.client_host)
        m.rack_id, m.server_assignor = value.rack_id, value.server_assignor
        m.rebalance_timeout_ms = value.rebalance_timeout_ms
        m.subscribed = tuple(value.subscribed_topic_names)
        if value.subscribed_topic_regex:
            try:
                m.regex = re.compile(value.subscribed_topic_regex)
            except re.error as exc:  # written by a broker whose regex dialect differs
                log.warning("consumer group %s: member %s's stored regex %r does not compile here: %s", group_id,
                            mid, value.subscribed_topic_regex, exc)
            else:
                m.matched = tuple(name for name in sorted(known) if m.regex.fullmatch(name))
        current = records.get(ConsumerGroupKey(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, group_id, mid))
        if isinstance(current, ConsumerMemberAssignment):
            m.epoch, m.previous_epoch = current.member_epoch, current.previous_member_epoch
            m.state = _STATES.get(current.state, MemberState.STABLE)
            m.assigned, m.revoking = _from_records(current.assigned), _from_records(current.pending_revocation)
        target = records.get(ConsumerGroupKey(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER, group_id, mid))
        if isinstance(target, list):
            group.target[mid] = _from_records(target)  # type: ignore[arg-type]
        group.members[mid] = m
        if m.instance_id is not None:
            group.static_members[m.instance_id] = mid
    # The topology as the last heartbeat saw it, so an unchanged cluster does not bump the epoch.
    group.topology = {name: known.get(name) for name in sorted(group.subscribed_topics())}
    return group
