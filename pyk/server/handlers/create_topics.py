"""CreateTopics: new topics with a partition count and topic-level config overrides.

pyk keeps one replica of each partition (no replication yet): a replication factor above 1 is
INVALID_REPLICATION_FACTOR.  A manual assignment places each partition on the shard node it names
(pyk.server.assignment).  The logs exist before the answer is sent, so the topic can be produced
to as soon as the client sees success.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.assignment import check_replication_factor, topic_placement
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import DUPLICATE, error_for, split_duplicates
from pyk.server.handlers.describe_configs import topic_config_entries
from pyk.server.metadata_store import TopicInfo, check_topic_name

API_KEY = ApiKey.CREATE_TOPICS
MIN_VERSION = 0
MAX_VERSION = 7


def _plan(services: ShardServices, topic: dict[str, Any]) -> tuple[int, dict[str, str], list[int] | None]:
    """Validated (partitions, configs, placement) for one topic of the request; placement is the
    owning shard of each partition for a manual assignment, None to let the store place them."""
    name = topic["name"]
    check_topic_name(name)
    if services.metadata.get(name) is not None:
        raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
    # Kafka refuses names that differ only in '.' against '_': they share their metric names.
    clash = next((t for t in services.metadata.topics if t.replace(".", "_") == name.replace(".", "_")), None)
    if clash is not None:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"topic {name!r} collides with existing topic {clash!r}")
    assignments = topic.get("assignments") or []
    count, rf = topic["num_partitions"], topic["replication_factor"]
    placement: list[int] | None = None
    if assignments:
        # Kafka (ReplicationControlManager.createTopic) checks the replication factor first.
        if rf != -1:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"a manual partition assignment was given, but replication factor is {rf}, not -1")
        if count != -1:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"a manual partition assignment was given, but num_partitions is {count}, not -1")
        placement = topic_placement(assignments, services.node_ids)
        count = len(placement)
    else:
        if count == -1:
            count = services.config["num.partitions"]
        if rf == -1:
            rf = services.config["default.replication.factor"]
        if count < 1:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be at least 1, found {count}")
        check_replication_factor(rf)
    configs = {c["name"]: c["value"] for c in topic.get("configs") or []}
    services.admin.log_defaults.with_overrides(configs)  # raises INVALID_CONFIG
    return count, configs, placement


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    validate_only = request.get("validate_only", False)
    topics, duplicates = split_duplicates(request["topics"])
    results = []
    for topic in topics:
        name = topic["name"]
        entry: dict[str, Any] = {"name": name, "error_code": ErrorCode.NONE, "error_message": None,
                                 "num_partitions": -1, "replication_factor": -1, "configs": []}
        try:
            count, configs, placement = _plan(services, topic)
            if validate_only:  # as Kafka, what the topic would be, under an id it would not keep
                info = TopicInfo(name, uuid.uuid4(), count, configs)
            else:
                info = await services.admin.create_topic(name, count, configs, placement)
            entry.update(topic_id=info.topic_id, num_partitions=count, replication_factor=1,
                         configs=topic_config_entries(services, info, None, False, False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"create topic {name}")
        results.append(entry)
    results += [{"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": DUPLICATE, "configs": []}
                for name in duplicates]
    return {"throttle_time_ms": 0, "topics": results}
