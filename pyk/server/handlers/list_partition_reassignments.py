"""ListPartitionReassignments (KIP-455): the partitions being moved, with their current replica
set (old and new replicas together) and the replicas being added and removed.

Answered by the controller host from its view of the cluster state (the snapshot its ZooKeeper
session built); another host answers NOT_CONTROLLER, as Kafka's brokers did.  Partitions asked
for that are not being moved, or do not exist, are left out (Kafka's controller does the same).
A single host never has a move in progress.

With an authorizer it needs DESCRIBE on the cluster (ALTER implies it); without, the request
fails with CLUSTER_AUTHORIZATION_FAILED, the partitions asked for echoed without replicas (Kafka's
error response), before any controller check.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.LIST_PARTITION_REASSIGNMENTS
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": []}
    asked = request.get("topics")
    if not services.cluster_authorized(ctx, AclOperation.DESCRIBE):
        body["error_code"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        body["error_message"] = f"{ctx.principal} may not DESCRIBE the cluster"
        body["topics"] = [{"name": t["name"], "partitions": [
            {"partition_index": p, "replicas": [], "adding_replicas": [], "removing_replicas": []}
            for p in t["partition_indexes"]]} for t in asked or []]
        return body
    metadata = services.metadata
    if metadata.clustered and metadata.controller_id != services.base_node_id:
        body["error_code"] = ErrorCode.NOT_CONTROLLER
        body["error_message"] = f"this host is not the controller (node {metadata.controller_id} is)"
        return body
    wanted = ({t["name"]: set(t["partition_indexes"]) for t in asked} if asked is not None
              else {name: None for name in metadata.topics})
    for name, asked_partitions in sorted(wanted.items()):
        info = metadata.get(name)
        if info is None or not info.adding:
            continue
        partitions = [{"partition_index": p, "replicas": info.replicas[p], "adding_replicas": info.adding[p],
                       "removing_replicas": info.removing[p]}
                      for p in range(info.partitions)
                      if (info.adding[p] or info.removing[p]) and (asked_partitions is None or p in asked_partitions)]
        if partitions:
            body["topics"].append({"name": name, "partitions": partitions})
    return body
