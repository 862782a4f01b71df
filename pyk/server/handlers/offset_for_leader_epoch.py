"""OffsetForLeaderEpoch (KIP-101/KIP-320): the end offset of a leader epoch, so a consumer that
saw an epoch can detect log truncation after a leader change."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.OFFSET_FOR_LEADER_EPOCH
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    # A follower's request (replica_id >= 0) with CLUSTER_ACTION may ask about any topic, else
    # DESCRIBE on each topic (Kafka's handleOffsetForLeaderEpochRequest).
    cluster_action = request.get("replica_id", -1) >= 0 and services.cluster_authorized(
        ctx, AclOperation.CLUSTER_ACTION, audit=False)
    topics = []
    for topic in request["topics"]:
        name = topic["topic"]
        partitions = []
        for part in topic["partitions"]:
            index = part["partition"]
            entry = {"error_code": ErrorCode.NONE, "partition": index, "leader_epoch": -1, "end_offset": -1}
            try:
                if not cluster_action:
                    services.require(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)
                plog = services.replicas.leader_log(name, index, part.get("current_leader_epoch", -1))
                entry["leader_epoch"], entry["end_offset"] = plog.end_offset_for_epoch(part["leader_epoch"])
            except Exception as exc:
                entry["error_code"], _ = error_for(exc, f"offset for leader epoch of {name}-{index}")
            partitions.append(entry)
        topics.append({"topic": name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
