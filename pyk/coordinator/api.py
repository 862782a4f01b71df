"""The group coordinator's typed arguments and results, by Kafka's names.

The coordinator's request methods (classic.py, offset_metadata.py) take these and plain
parameters, and return these; the handlers (pyk/server/handlers) translate the wire dicts of
their version to and from them, so no coordinator signature carries a version's wire shape.
Partitions are flat (topic, partition) rows in request order; the handlers group them by topic
as the responses nest them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyk.errors import ErrorCode

TopicPartition = tuple[str, int]  # (topic, partition)


# OffsetCommit / TxnOffsetCommit / OffsetDelete ------------------------------------------------
@dataclass(frozen=True, slots=True)
class OffsetCommitPartition:
    """One partition's offset to commit (OffsetCommitRequestPartition, TxnOffsetCommitRequestPartition)."""

    topic: str
    partition: int
    committed_offset: int
    committed_leader_epoch: int = -1
    committed_metadata: str = ""
    commit_timestamp: int = -1  # OffsetCommit v1 only: the client's commit time; -1 = now


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """A partition's error in OffsetCommit, TxnOffsetCommit and OffsetDelete responses."""

    topic: str
    partition: int
    error_code: ErrorCode


# OffsetFetch -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OffsetFetchPartition:
    """One partition of an OffsetFetch answer (OffsetFetchResponsePartition(s)); -1 / "" where
    nothing is committed."""

    topic: str
    partition: int
    committed_offset: int = -1
    committed_leader_epoch: int = -1
    metadata: str = ""
    error_code: ErrorCode = ErrorCode.NONE


@dataclass(frozen=True, slots=True)
class OffsetFetchResult:
    """One group's OffsetFetch answer: a group-level error, or its partitions."""

    error_code: ErrorCode
    partitions: list[OffsetFetchPartition]


# JoinGroup / SyncGroup / LeaveGroup --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JoinGroupResponseMember:
    """A member as the leader's JoinGroup answer lists it, with its metadata for the protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinGroupResult:
    error_code: ErrorCode
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str
    skip_assignment: bool
    member_id: str
    members: list[JoinGroupResponseMember]


@dataclass(frozen=True, slots=True)
class SyncGroupResult:
    error_code: ErrorCode
    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes


@dataclass(frozen=True, slots=True)
class MemberIdentity:
    """A member LeaveGroup removes (v3+: several, or a static one by instance id alone)."""

    member_id: str
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class MemberResponse:
    member_id: str
    group_instance_id: str | None
    error_code: ErrorCode


@dataclass(frozen=True, slots=True)
class LeaveGroupResult:
    """A group-level error (then no members), or each member's result."""

    error_code: ErrorCode
    members: list[MemberResponse]


# ListGroups / DescribeGroups / DeleteGroups ------------------------------------------------
@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    group_state: str  # Kafka's state name: Empty, Stable, ... (consumer groups: theirs, e.g. Reconciling)


@dataclass(frozen=True, slots=True)
class DescribedGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    member_metadata: bytes
    member_assignment: bytes


@dataclass(frozen=True, slots=True)
class DescribedGroup:
    """A group as DescribeGroups answers; an unknown group is Dead with GROUP_ID_NOT_FOUND, which
    DescribeGroups reports from v6 on (KIP-1043) and drops before, as Kafka does."""

    error_code: ErrorCode
    group_id: str
    group_state: str = "Dead"
    protocol_type: str = ""
    protocol_data: str = ""
    members: list[DescribedGroupMember] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeletableGroupResult:
    group_id: str
    error_code: ErrorCode


# ConsumerGroupHeartbeat (KIP-848) ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TopicPartitions:
    """Partitions of one topic, by topic id (ConsumerGroupHeartbeat's TopicPartitions)."""

    topic_id: uuid.UUID
    partitions: list[int]


@dataclass(frozen=True, slots=True)
class ConsumerGroupHeartbeatRequest:
    """One heartbeat of a consumer-protocol member; None fields are "unchanged since the last
    heartbeat" (Kafka sends only what changed), -1 likewise for the rebalance timeout."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: list[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    topic_partitions: list[TopicPartitions] | None = None  # the partitions the member owns


@dataclass(frozen=True, slots=True)
class Assignment:
    topic_partitions: list[TopicPartitions]


@dataclass(frozen=True, slots=True)
class ConsumerGroupHeartbeatResult:
    error_code: ErrorCode
    error_message: str | None
    member_id: str | None
    member_epoch: int
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None  # None: the member's assignment did not change


# ConsumerGroupDescribe (KIP-848) -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DescribedTopicPartitions:
    """Partitions of one topic by id and name (ConsumerGroupDescribe's TopicPartitions)."""

    topic_id: uuid.UUID
    topic_name: str
    partitions: list[int]


@dataclass(frozen=True, slots=True)
class ConsumerGroupMember:
    """A member as ConsumerGroupDescribe reports it (Kafka's DescribedGroup.Member)."""

    member_id: str
    instance_id: str | None
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    subscribed_topic_names: list[str]
    subscribed_topic_regex: str | None
    assignment: list[DescribedTopicPartitions]  # what it owns now
    target_assignment: list[DescribedTopicPartitions]  # what the assignor gave it
    member_type: int  # v1 (KIP-1099): 0 classic, 1 consumer protocol


@dataclass(frozen=True, slots=True)
class DescribedConsumerGroup:
    """A consumer-protocol group as ConsumerGroupDescribe answers, or an error for it."""

    error_code: ErrorCode
    error_message: str | None
    group_id: str
    group_state: str = ""
    group_epoch: int = -1
    assignment_epoch: int = -1
    assignor_name: str = ""
    members: list[ConsumerGroupMember] = field(default_factory=list)
