"""DescribeTopicPartitions (KIP-966): the partitions of the named topics (or of every topic), as
Metadata lists them plus eligible leader replicas, in topic-name order and paged: at most
`response_partition_limit` partitions (and never more than Kafka's 2000) per response, and a
`next_cursor` naming the first partition left out.  Kafka's admin client, hence kafka-topics
--describe, asks this before falling back to Metadata.

pyk keeps one replica per partition, so the eligible leader replicas and the last known ones
are always empty, as Kafka reports them for a partition whose ISR is whole.  A named topic that
does not exist gets UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an illegal name); when
every topic is asked for, there is none.  A cursor on a topic not asked for, or on a negative
partition, fails every named topic with INVALID_REQUEST.  (Kafka: DescribeTopicPartitionsRequestHandler and
KRaftMetadataCache.describeTopicResponse.)
"""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers.metadata import topic_entry
from pyk.server.metadata_store import INTERNAL_TOPICS, check_topic_name
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_TOPIC_PARTITIONS
MIN_VERSION = 0
MAX_VERSION = 0

MAX_PARTITIONS = 2000  # Kafka's max.request.partition.size.limit default


def _failed(name: str, code: ErrorCode) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": uuid.UUID(int=0), "is_internal": name in INTERNAL_TOPICS,
            "partitions": [], "topic_authorized_operations": -2147483648}


def _missing(name: str) -> dict[str, Any]:
    try:
        check_topic_name(name)
    except KafkaError as exc:
        return _failed(name, exc.code)
    return _failed(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    cursor = request.get("cursor")
    every_topic = not request["topics"]
    names = set(services.metadata.topics) if every_topic else {t["name"] for t in request["topics"]}
    first_partition = 0
    if cursor is not None:
        if cursor["partition_index"] < 0 or (not every_topic and cursor["topic_name"] not in names):
            # Kafka refuses the whole request: each named topic gets INVALID_REQUEST.
            return {"throttle_time_ms": 0, "next_cursor": None,
                    "topics": [_failed(t["name"], ErrorCode.INVALID_REQUEST) for t in request["topics"]]}
        names = {n for n in names if n >= cursor["topic_name"]}
        first_partition = cursor["partition_index"]
    remaining = min(request["response_partition_limit"], MAX_PARTITIONS)
    topics: list[dict[str, Any]] = []
    next_cursor = None
    for name in sorted(names):
        if remaining <= 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        if not services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name, audit=not every_topic):
            if not every_topic:  # Kafka: named but not describable refused, unnamed hidden
                topics.append(_failed(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
            continue
        info = services.metadata.get(name)
        if info is None:
            if not every_topic:
                topics.append(_missing(name))
            continue
        entry = topic_entry(services, info)
        start = first_partition if cursor is not None and name == cursor["topic_name"] else 0
        partitions = [dict(p, eligible_leader_replicas=[], last_known_elr=[]) for p in entry["partitions"][start:]]
        entry["partitions"] = partitions[:remaining]
        topics.append(entry)
        if len(partitions) > remaining:
            next_cursor = {"topic_name": name, "partition_index": start + remaining}
            break
        remaining -= len(partitions)
    return {"throttle_time_ms": 0, "topics": topics, "next_cursor": next_cursor}
