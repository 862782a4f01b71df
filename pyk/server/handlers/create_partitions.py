"""CreatePartitions: grow a topic's partition count (never shrink it, as in Kafka).

New partitions go to the least-loaded shards, or, with a manual assignment, each to the shard
node its assignment names (pyk.server.assignment).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.assignment import new_partitions_assignment, new_partitions_placement
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import DUPLICATE, error_for, split_duplicates
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.CREATE_PARTITIONS
MIN_VERSION = 0
MAX_VERSION = 3


async def _grow(services: ShardServices, topic: dict[str, Any], validate_only: bool) -> None:
    name, count = topic["name"], topic["count"]
    info = services.metadata.get(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    if count <= info.partitions:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"The topic {name} currently has {info.partitions} partition(s); "
                                                    f"{count} would not be an increase.")  # Kafka's words
    # A null assignment lets the store place the new partitions; an empty one is an assignment
    # of none of them, which Kafka refuses.  Every pyk topic has one replica per partition.
    assignments = topic.get("assignments")
    if info.replicas:  # a cluster: the assignment names replicas on any live nodes
        live = [int(b["node_id"]) for b in services.brokers()]
        assignment = None if assignments is None else new_partitions_assignment(
            assignments, count - info.partitions, live, len(info.replicas[0]))
        if not validate_only:
            await services.admin.create_partitions(name, count, None, assignment)
        return
    placement = None if assignments is None else new_partitions_placement(
        assignments, count - info.partitions, services.node_ids, replication_factor=1)
    if validate_only:
        return
    await services.admin.create_partitions(name, count, placement)


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    topics, duplicates = split_duplicates(request["topics"])
    results = []
    for topic in topics:
        entry: dict[str, Any] = {"name": topic["name"], "error_code": ErrorCode.NONE, "error_message": None}
        try:
            services.require(ctx, AclOperation.ALTER, ResourceType.TOPIC, topic["name"])
            await _grow(services, topic, request.get("validate_only", False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"create partitions of {topic['name']}")
        results.append(entry)
    results += [{"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": DUPLICATE}
                for name in duplicates]
    return {"throttle_time_ms": 0, "results": results}
