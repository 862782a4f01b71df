"""The consumer protocol's member metadata and assignments (protocol type "consumer").

To the classic group coordinator these are opaque bytes that the members' leader interprets
(client-side assignment).  For consumer-protocol (KIP-848) groups the broker writes them
itself (v0), so that DescribeGroups shows those members' subscriptions and assignments.  The broker reads them only to know which topics a group consumes:
offset retention keeps the offsets of subscribed topics of a stable group, OffsetDelete refuses
to delete them (GROUP_SUBSCRIBED_TO_TOPIC), and `pyk groups describe` shows the assignment.
Schemas: ConsumerProtocolSubscription.json / ConsumerProtocolAssignment.json in apache/kafka
(clients/src/main/resources/common/message/), never flexible:

    Subscription v0-3 => version:int16 topics:[string] user_data:nullable bytes
                         [owned_partitions:[topic:string partitions:[int32]] (v1+)]
                         [generation_id:int32 (v2+)] [rack_id:nullable string (v3+)]
    Assignment v0-3   => version:int16 assigned_partitions:[topic:string partitions:[int32]]
                         user_data:nullable bytes

Kafka promises that later versions only append fields, so a newer version is read as the
newest known one, as Kafka's ConsumerProtocol does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyk.protocol import primitives as p

PROTOCOL_TYPE = "consumer"


@dataclass
class Subscription:
    topics: list[str]
    user_data: bytes | None = None
    owned_partitions: dict[str, list[int]] = field(default_factory=dict)
    generation_id: int = -1
    rack_id: str | None = None


def _read_topic_partitions(data: bytes | memoryview, pos: int) -> tuple[dict[str, list[int]], int]:
    count, pos = p.read_int32(data, pos)
    out: dict[str, list[int]] = {}
    for _ in range(max(count, 0)):
        topic, pos = p.read_string(data, pos)
        n, pos = p.read_int32(data, pos)
        parts = []
        for _ in range(max(n, 0)):
            part, pos = p.read_int32(data, pos)
            parts.append(part)
        out.setdefault(topic, []).extend(parts)
    return out, pos


def decode_subscription(data: bytes | memoryview) -> Subscription:
    """Raises ProtocolViolation when the bytes are not a consumer subscription."""
    version, pos = p.read_int16(data, 0)
    count, pos = p.read_int32(data, pos)
    topics = []
    for _ in range(max(count, 0)):
        topic, pos = p.read_string(data, pos)
        topics.append(topic)
    user_data, pos = p.read_nullable_bytes(data, pos)
    sub = Subscription(topics, None if user_data is None else bytes(user_data))
    # Some clients write a v1+ header but stop after the v0 fields; what is there is read.
    if version >= 1 and pos < len(data):
        sub.owned_partitions, pos = _read_topic_partitions(data, pos)
    if version >= 2 and pos + 4 <= len(data):
        sub.generation_id, pos = p.read_int32(data, pos)
    if version >= 3 and pos < len(data):
        sub.rack_id, pos = p.read_nullable_string(data, pos)
    return sub


def decode_assignment(data: bytes | memoryview) -> dict[str, list[int]]:
    """topic -> partitions; an empty assignment (b"", as the coordinator gives a member the
    leader left out) is no partitions.  Raises ProtocolViolation on malformed bytes."""
    if len(data) == 0:
        return {}
    _version, pos = p.read_int16(data, 0)
    assigned, _ = _read_topic_partitions(data, pos)
    return assigned


def encode_subscription(topics: list[str]) -> bytes:
    """A v0 subscription (no user data)."""
    out = bytearray()
    p.write_int16(out, 0)
    p.write_int32(out, len(topics))
    for topic in topics:
        p.write_nullable_string(out, topic)
    p.write_nullable_bytes(out, None)
    return bytes(out)


def encode_assignment(assigned: dict[str, list[int]]) -> bytes:
    """A v0 assignment (no user data), topics in name order."""
    out = bytearray()
    p.write_int16(out, 0)
    p.write_int32(out, len(assigned))
    for topic, parts in sorted(assigned.items()):
        p.write_nullable_string(out, topic)
        p.write_int32(out, len(parts))
        for part in parts:
            p.write_int32(out, part)
    p.write_nullable_bytes(out, None)
    return bytes(out)
