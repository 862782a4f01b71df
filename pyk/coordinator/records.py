"""The records the group coordinator writes to `__consumer_offsets`, in Kafka's own formats.

Every record's key and value start with an int16 version; the key version says what the record
is.  The schemas are Kafka's public ones (group-coordinator/src/main/resources/common/message/
in apache/kafka: OffsetCommitKey.json, OffsetCommitValue.json, GroupMetadataKey.json,
GroupMetadataValue.json), so tools that read the topic directly (Burrow, kcat plus a decoder,
Kafka's own `kafka-console-consumer --formatter ...OffsetsMessageFormatter`) work unchanged:

    OffsetCommitKey    (key version 0 or 1) => group:string topic:string partition:int32
    GroupMetadataKey   (key version 2)      => group:string
    (key versions 3+ are KIP-848 consumer-group records; pyk's classic coordinator skips them)

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
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupMetadataKey:
    group: str


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


def decode_key(data: bytes | memoryview) -> OffsetCommitKey | GroupMetadataKey | None:
    """The key of a `__consumer_offsets` record; None for record types the classic coordinator
    does not own (KIP-848 consumer-group and share-group records, key versions 3+)."""
    version, pos = p.read_int16(data, 0)
    if version in (0, 1):
        group, pos = p.read_string(data, pos)
        topic, pos = p.read_string(data, pos)
        partition, pos = p.read_int32(data, pos)
        return OffsetCommitKey(group, topic, partition)
    if version == GROUP_METADATA_KEY_VERSION:
        group, pos = p.read_string(data, pos)
        return GroupMetadataKey(group)
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

    def int32(self) -> int:
        value, self.pos = p.read_int32(self.data, self.pos)
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
    def __init__(self, version: int) -> None:
        self.out = bytearray(p.INT16.pack(version))
        self.flexible = version >= _FLEXIBLE_FROM

    def int32(self, value: int) -> None:
        self.out += p.INT32.pack(value)

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
