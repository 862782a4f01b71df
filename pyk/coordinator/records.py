"""The records the group coordinator writes to `__consumer_offsets`, in Kafka's own formats.

Every record's key and value start with an int16 version; the key version says what the record
is.  The schemas are Kafka's public ones (group-coordinator/src/main/resources/common/message/
in apache/kafka: OffsetCommitKey.json, OffsetCommitValue.json, GroupMetadataKey.json,
GroupMetadataValue.json), so tools that read the topic directly (Burrow, kcat plus a decoder,
Kafka's own `kafka-console-consumer --formatter ...OffsetsMessageFormatter`) work unchanged:

    OffsetCommitKey    (key version 0 or 1) => group:string topic:string partition:int32
    GroupMetadataKey   (key version 2)      => group:string
    ConsumerGroup*Key  (key versions 3-8)   => group:string [member_id:string (5, 7, 8)]
    (key versions 9+ are share and streams group records: pyk skips them)

    OffsetCommitValue v0-4 => offset:int64 [leader_epoch:int32 (v3+)] metadata:string
                              commit_timestamp:int64 [expire_timestamp:int64 (v1 only)]
    GroupMetadataValue v0-4 => protocol_type:string generation:int32 protocol:nullable string
                               leader:nullable string [current_state_timestamp:int64 (v2+)]
                               members:[MemberMetadata]
      MemberMetadata => member_id:string [group_instance_id:nullable string (v3+)]
                        client_id:string client_host:string [rebalance_timeout:int32 (v1+)]
                        session_timeout:int32 subscription:bytes assignment:bytes

Version 4 of both values is flexible (KIP-482: compact strings/bytes/arrays, a tagged-field
section after each struct).  A value of null is a tombstone: the offset or the group is gone,
and compaction eventually drops every earlier record with the same key.

Which versions pyk writes: exactly what Kafka 3.x/4.x brokers write (MetadataVersion
`offsetCommitValueVersion` / `groupMetadataValueVersion`): OffsetCommitValue v3, or v1 when the
commit carries an explicit expire timestamp (OffsetCommit v2-v4 retention_time_ms), and
GroupMetadataValue v3.  Older tools (Burrow 1.x) decode v0-v3 only, so writing the newest
flexible v4 would break them for no gain.  Reading accepts every version 0-4.

KIP-848 consumer-protocol groups are stored as Kafka 3.8+ stores them (group-coordinator's
ConsumerGroup*Key/Value.json), one record per piece of state so a heartbeat rewrites only what it
changed.  The key's version is the record type; every value is version 0, flexible (compact
encodings, tagged fields after each struct, which pyk skips on read and writes empty):

    3 ConsumerGroupMetadata                => epoch:int32                      (the group epoch)
    4 ConsumerGroupPartitionMetadata       => topics:[topic_id:uuid topic_name:string
                                              num_partitions:int32 partition_metadata:[partition:int32
                                              racks:[string]]]          (subscribed topics' shape)
    5 ConsumerGroupMemberMetadata (member) => instance_id:nullable string rack_id:nullable string
                                              client_id:string client_host:string
                                              subscribed_topic_names:[string]
                                              subscribed_topic_regex:nullable string
                                              rebalance_timeout_ms:int32 server_assignor:nullable string
    6 ConsumerGroupTargetAssignmentMetadata => assignment_epoch:int32
    7 ConsumerGroupTargetAssignmentMember   => topic_partitions:[topic_id:uuid partitions:[int32]]
    8 ConsumerGroupCurrentMemberAssignment  => member_epoch:int32 previous_member_epoch:int32 state:int8
                                              assigned_partitions:[TopicPartitions]
                                              partitions_pending_revocation:[TopicPartitions]

A member's records are tombstoned when it leaves; the group's when the group is deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyk.errors import ProtocolViolation
from pyk.protocol import primitives as p

OFFSET_COMMIT_KEY_VERSION = 1  # 0 was the ZooKeeper-era writer; both decode the same
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1  # the only version carrying expire_timestamp
GROUP_METADATA_VALUE_VERSION = 3
MAX_VALUE_VERSION = 4
_FLEXIBLE_FROM = 4

# KIP-848 consumer-group record types (key versions).
CONSUMER_GROUP_METADATA = 3
CONSUMER_GROUP_PARTITION_METADATA = 4
CONSUMER_GROUP_MEMBER_METADATA = 5
CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA = 6
CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER = 7
CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT = 8
CONSUMER_GROUP_MEMBER_RECORDS = (CONSUMER_GROUP_MEMBER_METADATA, CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
                                 CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT)


@dataclass(frozen=True, slots=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupKey:
    """The key of a KIP-848 consumer-group record: its type (3-8, the key version), the group,
    and the member for the member records (5, 7, 8)."""

    type: int
    group: str
    member_id: str | None = None


TopicPartitions = list[tuple[uuid.UUID, list[int]]]  # (topic id, partitions), as the records list them


@dataclass(slots=True)
class ConsumerMemberMetadata:
    """ConsumerGroupMemberMetadataValue: who a member is and what it subscribes to."""

    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: list[str]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None


@dataclass(slots=True)
class ConsumerMemberAssignment:
    """ConsumerGroupCurrentMemberAssignmentValue: a member's epoch and reconciliation state.
    `state` is Kafka's MemberState byte (0 stable, 1 unrevoked, 2 unreleased partitions)."""

    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: TopicPartitions
    pending_revocation: TopicPartitions


ConsumerGroupValue = int | list[tuple[uuid.UUID, str, int]] | ConsumerMemberMetadata | TopicPartitions \
    | ConsumerMemberAssignment


@dataclass(slots=True)
class OffsetAndMetadata:
    """One committed offset as stored (OffsetCommitValue) and served by OffsetFetch."""

    offset: int
    leader_epoch: int = -1  # -1: the client did not say (committed_leader_epoch, KIP-320)
    metadata: str = ""
    commit_timestamp: int = -1  # ms since the epoch, set by the coordinator when not given
    expire_timestamp: int = -1  # -1: none; only OffsetCommit v2-v4 with retention_time_ms set one


@dataclass(slots=True)
class MemberMetadata:
    """One member as GroupMetadataValue stores it (subscription: its metadata for the chosen protocol)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: list[MemberMetadata] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Keys


def encode_offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    out = bytearray(p.INT16.pack(OFFSET_COMMIT_KEY_VERSION))
    p.write_string(out, group)
    p.write_string(out, topic)
    out += p.INT32.pack(partition)
    return bytes(out)


def encode_group_metadata_key(group: str) -> bytes:
    out = bytearray(p.INT16.pack(GROUP_METADATA_KEY_VERSION))
    p.write_string(out, group)
    return bytes(out)


def encode_consumer_group_key(key: ConsumerGroupKey) -> bytes:
    out = bytearray(p.INT16.pack(key.type))
    p.write_string(out, key.group)
    if key.type in CONSUMER_GROUP_MEMBER_RECORDS:
        p.write_string(out, key.member_id or "")
    return bytes(out)


def decode_key(data: bytes | memoryview) -> OffsetCommitKey | GroupMetadataKey | ConsumerGroupKey | None:
    """The key of a `__consumer_offsets` record; None for record types pyk does not own (share
    and streams group records, key versions 9+), which are skipped."""
    version, pos = p.read_int16(data, 0)
    if version in (0, 1):
        group, pos = p.read_string(data, pos)
        topic, pos = p.read_string(data, pos)
        partition, pos = p.read_int32(data, pos)
        return OffsetCommitKey(group, topic, partition)
    if version == GROUP_METADATA_KEY_VERSION:
        group, pos = p.read_string(data, pos)
        return GroupMetadataKey(group)
    if CONSUMER_GROUP_METADATA <= version <= CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
        group, pos = p.read_string(data, pos)
        member_id = None
        if version in CONSUMER_GROUP_MEMBER_RECORDS:
            member_id, pos = p.read_string(data, pos)
        return ConsumerGroupKey(version, group, member_id)
    if version < 0:
        raise ProtocolViolation(f"record key version {version} is negative")
    return None


# --------------------------------------------------------------------------------------------
# Values: one reader/writer pair per schema, switching string/bytes/array encodings on the
# version's flexibility, so each schema is written down once.


class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int, flexible: bool) -> None:
        self.data = data
        self.pos = pos
        self.flexible = flexible

    def int8(self) -> int:
        value, self.pos = p.read_int8(self.data, self.pos)
        return value

    def int32(self) -> int:
        value, self.pos = p.read_int32(self.data, self.pos)
        return value

    def uuid(self) -> uuid.UUID:
        value, self.pos = p.read_uuid(self.data, self.pos)
        return value

    def int64(self) -> int:
        value, self.pos = p.read_int64(self.data, self.pos)
        return value

    def string(self) -> str:
        reader = p.read_compact_string if self.flexible else p.read_string
        value, self.pos = reader(self.data, self.pos)
        return value

    def nullable_string(self) -> str | None:
        reader = p.read_compact_nullable_string if self.flexible else p.read_nullable_string
        value, self.pos = reader(self.data, self.pos)
        return value

    def bytes(self) -> bytes:
        reader = p.read_compact_bytes if self.flexible else p.read_bytes
        value, self.pos = reader(self.data, self.pos)
        return bytes(value)

    def array_length(self) -> int:
        if self.flexible:
            count, self.pos = p.read_uvarint(self.data, self.pos)
            count -= 1
        else:
            count, self.pos = p.read_int32(self.data, self.pos)
        if count < 0:
            raise ProtocolViolation(f"null array at offset {self.pos} where the schema has none")
        return count

    def end_struct(self) -> None:
        """Skips a flexible struct's tagged fields (none are defined for these schemas yet)."""
        if self.flexible:
            self.pos = p.skip_tagged_fields(self.data, self.pos)


class _Writer:
    def __init__(self, version: int, flexible: bool | None = None) -> None:
        self.out = bytearray(p.INT16.pack(version))
        self.flexible = version >= _FLEXIBLE_FROM if flexible is None else flexible

    def int8(self, value: int) -> None:
        self.out += p.INT8.pack(value)

    def int32(self, value: int) -> None:
        self.out += p.INT32.pack(value)

    def uuid(self, value: uuid.UUID) -> None:
        self.out += value.bytes

    def int64(self, value: int) -> None:
        self.out += p.INT64.pack(value)

    def string(self, value: str | None) -> None:
        (p.write_compact_nullable_string if self.flexible else p.write_nullable_string)(self.out, value)

    def bytes(self, value: bytes) -> None:
        (p.write_compact_nullable_bytes if self.flexible else p.write_nullable_bytes)(self.out, value)

    def array_length(self, count: int) -> None:
        if self.flexible:
            p.write_uvarint(self.out, count + 1)
        else:
            self.out += p.INT32.pack(count)

    def end_struct(self) -> None:
        if self.flexible:
            self.out += b"\x00"  # no tagged fields


def _value_version(data: bytes | memoryview, what: str) -> tuple[int, int]:
    version, pos = p.read_int16(data, 0)
    if not 0 <= version <= MAX_VALUE_VERSION:
        raise ProtocolViolation(f"{what} version {version}: expected 0-{MAX_VALUE_VERSION}")
    return version, pos


def encode_offset_commit_value(value: OffsetAndMetadata, version: int | None = None) -> bytes:
    """OffsetCommitValue at `version` (default: what Kafka writes, see the module docstring)."""
    if version is None:
        has_expiry = value.expire_timestamp >= 0
        version = OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY if has_expiry else OFFSET_COMMIT_VALUE_VERSION
    w = _Writer(version)
    w.int64(value.offset)
    if version >= 3:
        w.int32(value.leader_epoch)
    w.string(value.metadata)
    w.int64(value.commit_timestamp)
    if version == 1:
        w.int64(value.expire_timestamp)
    w.end_struct()
    return bytes(w.out)


def decode_offset_commit_value(data: bytes | memoryview) -> OffsetAndMetadata:
    version, pos = _value_version(data, "OffsetCommitValue")
    r = _Reader(data, pos, version >= _FLEXIBLE_FROM)
    offset = r.int64()
    leader_epoch = r.int32() if version >= 3 else -1
    metadata = r.string()
    commit_timestamp = r.int64()
    expire_timestamp = r.int64() if version == 1 else -1
    r.end_struct()
    return OffsetAndMetadata(offset, leader_epoch, metadata, commit_timestamp, expire_timestamp)


def encode_group_metadata_value(value: GroupMetadataValue, version: int = GROUP_METADATA_VALUE_VERSION) -> bytes:
    w = _Writer(version)
    w.string(value.protocol_type)
    w.int32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    if version >= 2:
        w.int64(value.current_state_timestamp)
    w.array_length(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        if version >= 3:
            w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        if version >= 1:
            w.int32(m.rebalance_timeout)
        w.int32(m.session_timeout)
        w.bytes(m.subscription)
        w.bytes(m.assignment)
        w.end_struct()
    w.end_struct()
    return bytes(w.out)


def decode_group_metadata_value(data: bytes | memoryview) -> GroupMetadataValue:
    version, pos = _value_version(data, "GroupMetadataValue")
    r = _Reader(data, pos, version >= _FLEXIBLE_FROM)
    protocol_type = r.string()
    generation = r.int32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    current_state_timestamp = r.int64() if version >= 2 else -1
    members = []
    for _ in range(r.array_length()):
        member_id = r.string()
        instance_id = r.nullable_string() if version >= 3 else None
        client_id = r.string()
        client_host = r.string()
        rebalance_timeout = r.int32() if version >= 1 else -1
        session_timeout = r.int32()
        subscription = r.bytes()
        assignment = r.bytes()
        r.end_struct()
        # v0 has no rebalance timeout: Kafka takes the session timeout in its place.
        members.append(MemberMetadata(member_id, instance_id, client_id, client_host,
                                      rebalance_timeout if rebalance_timeout >= 0 else session_timeout,
                                      session_timeout, subscription, assignment))
    r.end_struct()
    return GroupMetadataValue(protocol_type, generation, protocol, leader, current_state_timestamp, members)


# --------------------------------------------------------------------------------------------
# KIP-848 consumer-group values (all version 0, flexible)

_CONSUMER_VALUE_VERSION = 0


def _consumer_reader(data: bytes | memoryview, what: str) -> _Reader:
    version, pos = p.read_int16(data, 0)
    if version != _CONSUMER_VALUE_VERSION:
        raise ProtocolViolation(f"{what} version {version}: expected {_CONSUMER_VALUE_VERSION}")
    return _Reader(data, pos, True)


def _write_topic_partitions(w: _Writer, parts: TopicPartitions) -> None:
    w.array_length(len(parts))
    for topic_id, partitions in parts:
        w.uuid(topic_id)
        w.array_length(len(partitions))
        for partition in partitions:
            w.int32(partition)
        w.end_struct()


def _read_topic_partitions(r: _Reader) -> TopicPartitions:
    out = []
    for _ in range(r.array_length()):
        topic_id = r.uuid()
        out.append((topic_id, [r.int32() for _ in range(r.array_length())]))
        r.end_struct()
    return out


def encode_consumer_group_value(key_type: int, value: ConsumerGroupValue) -> bytes:
    """The value of a consumer-group record of `key_type` (see the module docstring)."""
    w = _Writer(_CONSUMER_VALUE_VERSION, flexible=True)
    if key_type in (CONSUMER_GROUP_METADATA, CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA):
        assert isinstance(value, int)
        w.int32(value)
    elif key_type == CONSUMER_GROUP_PARTITION_METADATA:
        assert isinstance(value, list)
        w.array_length(len(value))
        for topic_id, name, partitions in value:  # type: ignore[misc]
            w.uuid(topic_id)
            w.string(name)
            w.int32(partitions)
            w.array_length(0)  # partition racks: pyk has no racks (Kafka stores [] then too)
            w.end_struct()
    elif key_type == CONSUMER_GROUP_MEMBER_METADATA:
        assert isinstance(value, ConsumerMemberMetadata)
        w.string(value.instance_id)
        w.string(value.rack_id)
        w.string(value.client_id)
        w.string(value.client_host)
        w.array_length(len(value.subscribed_topic_names))
        for name in value.subscribed_topic_names:
            w.string(name)
        w.string(value.subscribed_topic_regex)
        w.int32(value.rebalance_timeout_ms)
        w.string(value.server_assignor)
    elif key_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
        assert isinstance(value, list)
        _write_topic_partitions(w, value)  # type: ignore[arg-type]
    elif key_type == CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
        assert isinstance(value, ConsumerMemberAssignment)
        w.int32(value.member_epoch)
        w.int32(value.previous_member_epoch)
        w.int8(value.state)
        _write_topic_partitions(w, value.assigned)
        _write_topic_partitions(w, value.pending_revocation)
    else:
        raise ValueError(f"not a consumer-group record type: {key_type}")
    w.end_struct()
    return bytes(w.out)


def decode_consumer_group_value(key_type: int, data: bytes | memoryview) -> ConsumerGroupValue:
    """Raises ProtocolViolation on bytes that are not a value of `key_type`."""
    r = _consumer_reader(data, f"consumer group record {key_type}")
    value: ConsumerGroupValue
    if key_type in (CONSUMER_GROUP_METADATA, CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA):
        value = r.int32()
    elif key_type == CONSUMER_GROUP_PARTITION_METADATA:
        topics = []
        for _ in range(r.array_length()):
            topic_id, name, partitions = r.uuid(), r.string(), r.int32()
            for _ in range(r.array_length()):  # partition racks: read past
                r.int32()
                for _ in range(r.array_length()):
                    r.string()
                r.end_struct()
            r.end_struct()
            topics.append((topic_id, name, partitions))
        value = topics
    elif key_type == CONSUMER_GROUP_MEMBER_METADATA:
        instance_id, rack_id, client_id, client_host = r.nullable_string(), r.nullable_string(), r.string(), r.string()
        names = [r.string() for _ in range(r.array_length())]
        value = ConsumerMemberMetadata(instance_id, rack_id, client_id, client_host, names, r.nullable_string(),
                                       r.int32(), r.nullable_string())
    elif key_type == CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
        value = _read_topic_partitions(r)
    elif key_type == CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
        epoch, previous, state = r.int32(), r.int32(), r.int8()
        value = ConsumerMemberAssignment(epoch, previous, state, _read_topic_partitions(r), _read_topic_partitions(r))
    else:
        raise ProtocolViolation(f"not a consumer-group record type: {key_type}")
    r.end_struct()
    return value
