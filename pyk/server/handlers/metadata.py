"""Metadata: brokers, the cluster id, and topics with their partitions and leaders.

On a single node this broker leads every partition at leader epoch 0 with itself as the only
replica.  Unknown topics are created here when auto.create.topics.enable is on and the request
allows it (v4+ AllowAutoTopicCreation), as Kafka does; creation is synchronous, so the answer
already lists the new partitions and the client need not retry.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.handlers import error_for
from pyk.server.metadata_store import TopicInfo, check_topic_name

API_KEY = ApiKey.METADATA
MIN_VERSION = 0
MAX_VERSION = 12

_ZERO_UUID = uuid.UUID(int=0)


def topic_entry(broker: Any, info: TopicInfo) -> dict[str, Any]:
    node = broker.node_id
    return {
        "error_code": ErrorCode.NONE,
        "name": info.name,
        "topic_id": info.topic_id,
        "is_internal": info.internal,
        "partitions": [
            {
                "error_code": ErrorCode.NONE,
                "partition_index": p,
                "leader_id": node,
                "leader_epoch": broker.partition_log(info.name, p).leader_epoch,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [],
            }
            for p in range(info.partitions)
        ],
        "topic_authorized_operations": -2147483648,
    }


def _error_entry(name: str | None, topic_id: uuid.UUID, code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False, "partitions": []}


def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    version = header.api_version
    requested = request.get("topics")
    if requested is None or (version == 0 and not requested):
        topics = [topic_entry(broker, t) for t in broker.metadata.topics.values()]
    else:
        allow_auto = request.get("allow_auto_topic_creation", True)
        topics = []
        for item in requested:
            name, topic_id = item.get("name"), item.get("topic_id") or _ZERO_UUID
            if name is None:
                info = broker.metadata.by_id(topic_id)
                topics.append(topic_entry(broker, info) if info else _error_entry(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID))
                continue
            info = broker.metadata.get(name)
            if info is None and allow_auto:
                try:
                    check_topic_name(name)
                    info = broker.maybe_auto_create(name)
                except (KafkaError, OSError) as exc:
                    code, _ = error_for(exc, f"auto-creating topic {name}")
                    topics.append(_error_entry(name, _ZERO_UUID, code))
                    continue
            topics.append(topic_entry(broker, info) if info else _error_entry(name, _ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    return {
        "throttle_time_ms": 0,
        "brokers": broker.brokers(),
        "cluster_id": broker.metadata.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
        "cluster_authorized_operations": -2147483648,
    }
