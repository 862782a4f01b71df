"""Metadata: brokers, the cluster id, and topics with their partitions and leaders.

On a single host each partition has one replica, its shard, which leads it; in a cluster the
answer is the cluster state (leaders, replicas, ISR; LEADER_NOT_AVAILABLE for a partition
without a leader, offline replicas those whose node is not registered).  Unknown topics are created here when auto.create.topics.enable is on and the request
allows it (v4+ AllowAutoTopicCreation), as Kafka does; creation is synchronous, so the answer
already lists the new partitions and the client need not retry.

With an authorizer (Kafka's rules): a request for all topics lists only those the principal may
DESCRIBE; a named topic it may not describe answers TOPIC_AUTHORIZATION_FAILED whether or not it
exists; auto-creation needs CREATE on the cluster or on the topic.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError, ProtocolViolation
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.metadata_store import TopicInfo, check_topic_name
from pyk.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

API_KEY = ApiKey.METADATA
MIN_VERSION = 0
MAX_VERSION = 12

_ZERO_UUID = uuid.UUID(int=0)


def topic_entry(services: ShardServices, info: TopicInfo) -> dict[str, Any]:
    partitions = []
    live = {b["node_id"] for b in services.metadata.brokers} if services.metadata.brokers is not None else None
    for p in range(info.partitions):
        leader = services.replicas.leader_of(info, p)
        replicas, isr = (info.replicas[p], info.isr[p]) if info.replicas else ([leader], [leader])
        partitions.append({
            "error_code": ErrorCode.NONE if leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE,
            "partition_index": p,
            "leader_id": leader,
            "leader_epoch": info.epochs[p],
            "replica_nodes": replicas,
            "isr_nodes": isr,
            "offline_replicas": [r for r in replicas if r not in live] if live is not None else [],
        })
    return {"error_code": ErrorCode.NONE, "name": info.name, "topic_id": info.topic_id, "is_internal": info.internal,
            "partitions": partitions, "topic_authorized_operations": -2147483648}


def _error_entry(name: str | None, topic_id: uuid.UUID, code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False, "partitions": []}


def _body(ctx: RequestContext, services: ShardServices, request: dict[str, Any],
          topics: list[dict[str, Any]]) -> dict[str, Any]:
    """The response; when asked (v8+), the principal's operations on each topic answered and on
    the cluster (0 without DESCRIBE on it), as Kafka reports them."""
    if request.get("include_topic_authorized_operations"):
        for t in topics:
            if t["error_code"] == ErrorCode.NONE:
                t["topic_authorized_operations"] = services.authorized_operations(ctx, ResourceType.TOPIC, t["name"])
    cluster_operations = -2147483648
    if request.get("include_cluster_authorized_operations"):
        cluster_operations = services.authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME) \
            if services.cluster_authorized(ctx, AclOperation.DESCRIBE) else 0
    return {
        "throttle_time_ms": 0,
        "brokers": services.brokers(ctx.connection.listener),
        "cluster_id": services.metadata.cluster_id,
        "controller_id": services.controller_id,
        "topics": topics,
        "cluster_authorized_operations": cluster_operations,
    }


def _entry(ctx: RequestContext, services: ShardServices, item: dict[str, Any]) -> dict[str, Any] | None:
    """The answer for one requested topic, or None when it must be auto-created first."""
    name, topic_id = item.get("name"), item.get("topic_id") or _ZERO_UUID
    # A topic id names the topic (as in Kafka's KafkaApis); the Java client sends "" as its name.
    if name is None or topic_id != _ZERO_UUID:
        info = services.metadata.by_id(topic_id)
        if info is None:
            return _error_entry(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID)
        if not services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, info.name):
            return _error_entry(None, topic_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        return topic_entry(services, info)
    if not services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name):
        return _error_entry(name, _ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    info = services.metadata.get(name)
    if info is not None:
        return topic_entry(services, info)
    return None


def _missing(name: str) -> dict[str, Any]:
    """A topic that does not exist and will not be created: an illegal name says so first, as in Kafka."""
    try:
        check_topic_name(name)
    except KafkaError as exc:
        return _error_entry(name, _ZERO_UUID, exc.code)
    return _error_entry(name, _ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


async def _auto_create(ctx: RequestContext, services: ShardServices, name: str) -> dict[str, Any]:
    if not (services.cluster_authorized(ctx, AclOperation.CREATE, audit=False)
            or services.authorized(ctx, AclOperation.CREATE, ResourceType.TOPIC, name)):
        return _error_entry(name, _ZERO_UUID, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    try:
        check_topic_name(name)
        info = await services.admin.maybe_auto_create(name)
    except KafkaError as exc:
        code, _ = error_for(exc, f"auto-creating topic {name}")
        return _error_entry(name, _ZERO_UUID, code)
    if info is None:
        return _error_entry(name, _ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    return topic_entry(services, info)


async def _with_auto_create(ctx: RequestContext, services: ShardServices, request: dict[str, Any],
                            found: list[dict[str, Any] | None]) -> dict[str, Any]:
    topics = []
    for item, entry in zip(request["topics"], found, strict=True):
        topics.append(entry if entry is not None else await _auto_create(ctx, services, item["name"]))
    return _body(ctx, services, request, topics)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    requested = request.get("topics")
    if requested and ctx.header.api_version < 12:
        # v10 and v11 carry a topic id and a nullable name but answer with a non-nullable name:
        # Kafka's KafkaApis refuses both there (InvalidRequestException).  Found by the live fuzzer.
        for item in requested:
            if item.get("name") is None or (item.get("topic_id") or _ZERO_UUID) != _ZERO_UUID:
                raise ProtocolViolation(f"Metadata v{ctx.header.api_version}: a topic by id or without a name "
                                        f"(topic ids are supported from v12)")
    if requested is None or (ctx.header.api_version == 0 and not requested):
        topics = services.metadata.topics
        shown = services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, topics, audit=False)
        return _body(ctx, services, request, [topic_entry(services, t) for t in topics.values() if t.name in shown])
    found = [_entry(ctx, services, item) for item in requested]
    if all(entry is not None for entry in found):
        return _body(ctx, services, request, found)  # type: ignore[arg-type]
    if not request.get("allow_auto_topic_creation", True):
        return _body(ctx, services, request, [e if e is not None else _missing(i["name"]) for i, e in zip(requested, found, strict=True)])
    return _with_auto_create(ctx, services, request, found)
