"""CreateTopics: new topics with a partition count and topic-level config overrides.

A single host keeps one replica of each partition: a replication factor above 1 is
INVALID_REPLICATION_FACTOR, and a manual assignment places each partition on the shard node it
names (pyk.server.assignment).  A ZooKeeper cluster replicates: the factor is checked against the
live nodes where the replicas are placed (pyk.cluster.placement), an assignment names any live
nodes.  The logs exist before the answer is sent, so the topic can be produced
to as soon as the client sees success.

With an authorizer a created topic's configs, partition count and replication factor are
answered only to a principal that may DESCRIBE_CONFIGS it; to another, topic_config_error_code
says TOPIC_AUTHORIZATION_FAILED (Kafka's ControllerApis / ReplicationControlManager).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.assignment import check_replication_factor, topic_assignment, topic_placement
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import DUPLICATE, error_for, split_duplicates
from pyk.server.handlers.describe_configs import topic_config_entries
from pyk.server.metadata_store import TopicInfo, check_topic_name
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.CREATE_TOPICS
MIN_VERSION = 0
MAX_VERSION = 7


@dataclass
class _Plan:
    """One topic of the request, validated: on a single host `placement` is the owning shard of
    each partition of a manual assignment; in a cluster `assignment` is its replicas."""

    count: int
    configs: dict[str, str]
    replication_factor: int
    placement: list[int] | None = None
    assignment: list[list[int]] | None = None


def _plan(services: ShardServices, topic: dict[str, Any]) -> _Plan:
    """Validated partitions, replicas and configs of one topic of the request (None placement or
    assignment: the store or controller places the replicas)."""
    name = topic["name"]
    check_topic_name(name)
    if services.metadata.get(name) is not None:
        raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")  # Kafka's words
    # Kafka refuses names that differ only in '.' against '_': they share their metric names.
    clash = next((t for t in services.metadata.topics if t.replace(".", "_") == name.replace(".", "_")), None)
    if clash is not None:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"topic {name!r} collides with existing topic {clash!r}")
    assignments = topic.get("assignments") or []
    count, rf = topic["num_partitions"], topic["replication_factor"]
    placement: list[int] | None = None
    assignment: list[list[int]] | None = None
    clustered = services.metadata.brokers is not None
    if assignments:
        # Kafka (ReplicationControlManager.createTopic) checks the replication factor first.
        if rf != -1:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"a manual partition assignment was given, but replication factor is {rf}, not -1")
        if count != -1:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"a manual partition assignment was given, but num_partitions is {count}, not -1")
        if clustered:
            assignment = topic_assignment(assignments, [int(b["node_id"]) for b in services.brokers()])
            count, rf = len(assignment), len(assignment[0])
        else:
            placement = topic_placement(assignments, services.node_ids)
            count, rf = len(placement), 1
    else:
        if count == -1:
            count = services.config["num.partitions"]
        if rf == -1:
            rf = services.config["default.replication.factor"]
        if count < 1:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be at least 1, found {count}")
        if not clustered:
            check_replication_factor(rf)
    configs = {c["name"]: c["value"] for c in topic.get("configs") or []}
    services.admin.log_defaults.with_overrides(configs)  # raises INVALID_CONFIG
    return _Plan(count, configs, rf, placement, assignment)


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    validate_only = request.get("validate_only", False)
    topics, duplicates = split_duplicates(request["topics"])
    results = []
    # CREATE on the cluster covers every topic, else CREATE on each (Kafka's handleCreateTopicsRequest).
    any_topic = services.cluster_authorized(ctx, AclOperation.CREATE, audit=False)
    for topic in topics:
        name = topic["name"]
        entry: dict[str, Any] = {"name": name, "error_code": ErrorCode.NONE, "error_message": None,
                                 "num_partitions": -1, "replication_factor": -1, "configs": []}
        try:
            if not any_topic:
                services.require(ctx, AclOperation.CREATE, ResourceType.TOPIC, name)
            plan = _plan(services, topic)
            count, rf = plan.count, plan.replication_factor
            if validate_only:  # as Kafka, what the topic would be, under an id it would not keep
                info = TopicInfo(name, uuid.uuid4(), count, plan.configs)
            else:
                info = await services.admin.create_topic(name, count, plan.configs, plan.placement, rf, plan.assignment)
            entry["topic_id"] = info.topic_id
            if services.authorized(ctx, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, name, audit=False):
                entry.update(num_partitions=count, replication_factor=rf,
                             configs=topic_config_entries(services, info, None, False, False))
            else:
                entry["topic_config_error_code"] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"create topic {name}")
        results.append(entry)
    results += [{"name": name, "error_code": ErrorCode.INVALID_REQUEST, "error_message": DUPLICATE, "configs": []}
                for name in duplicates]
    return {"throttle_time_ms": 0, "topics": results}
