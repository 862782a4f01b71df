"""CreatePartitions: grow a topic's partition count (never shrink it, as in Kafka)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.handlers import error_for

API_KEY = ApiKey.CREATE_PARTITIONS
MIN_VERSION = 0
MAX_VERSION = 3


async def _grow(broker: Any, topic: dict[str, Any], validate_only: bool) -> None:
    name, count = topic["name"], topic["count"]
    info = broker.metadata.get(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    if count <= info.partitions:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"topic {name} has {info.partitions} partitions; {count} would not add any")
    for a in topic.get("assignments") or []:
        if a["broker_ids"] != [broker.node_id]:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"only broker {broker.node_id} exists, found {a['broker_ids']}")
    if validate_only:
        return
    await broker.create_partitions(name, count)


async def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    results = []
    for topic in request["topics"]:
        entry: dict[str, Any] = {"name": topic["name"], "error_code": ErrorCode.NONE, "error_message": None}
        try:
            await _grow(broker, topic, request.get("validate_only", False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"create partitions of {topic['name']}")
        results.append(entry)
    return {"throttle_time_ms": 0, "results": results}
