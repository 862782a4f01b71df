"""AlterPartitionReassignments (KIP-455): move partitions to new replica sets, or cancel a move.

In a cluster the controller host's ZooKeeper session validates each partition's target and
records it in the topic's assignment (adding / removing replicas, Kafka 2.4's layout); the new
replicas fetch from the leader, and once all target replicas are in sync the controller makes
the target the assignment (pyk.cluster.zk, docs/cluster.md "Reassignment").  The answer comes
when the move has started, not when it is done (ListPartitionReassignments follows it).  Any
other host answers NOT_CONTROLLER, and clients retry at the controller that Metadata names.

A single host keeps one replica of each partition on one of its shards: naming that shard's
node is a no-op, anything else INVALID_REPLICA_ASSIGNMENT (moves between the shards of a single
host are `pyk shards move`).

With an authorizer it needs ALTER on the cluster; without, the request fails with
CLUSTER_AUTHORIZATION_FAILED at the top and on every partition named (Kafka's error response).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.ALTER_PARTITION_REASSIGNMENTS
MIN_VERSION = 0
MAX_VERSION = 1

Result = tuple[str, int, int, str | None]


def _single_host(services: ShardServices, wanted: list[tuple[str, int, list[int] | None]]) -> list[Result]:
    results: list[Result] = []
    for name, p, target in wanted:
        info = services.metadata.get(name)
        if info is None or not 0 <= p < info.partitions:
            results.append((name, p, int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), "The partition does not exist."))
        elif target is None:
            results.append((name, p, int(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS),
                            f"no reassignment of {name}-{p} is in progress"))
        elif target == [services.replicas.leader_of(info, p)]:
            results.append((name, p, int(ErrorCode.NONE), None))
        else:
            results.append((name, p, int(ErrorCode.INVALID_REPLICA_ASSIGNMENT),
                            "a single pyk host keeps one replica per partition (moves between its shards: "
                            "pyk shards move)"))
    return results


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    allow_rf_change = request.get("allow_replication_factor_change", True)
    body: dict[str, Any] = {"throttle_time_ms": 0, "allow_replication_factor_change": allow_rf_change,
                            "error_code": ErrorCode.NONE, "error_message": None, "responses": []}
    if not services.cluster_authorized(ctx, AclOperation.ALTER):
        refusal = f"{ctx.principal} may not ALTER the cluster"
        body["error_code"], body["error_message"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, refusal
        body["responses"] = [{"name": t["name"], "partitions": [
            {"partition_index": p["partition_index"], "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
             "error_message": refusal} for p in t["partitions"]]} for t in request["topics"]]
        return body
    wanted = [(t["name"], p["partition_index"], p["replicas"]) for t in request["topics"] for p in t["partitions"]]
    results: list[Result]
    if services.metadata.clustered:
        try:
            results = await services.admin.alter_partition_reassignments(wanted, allow_rf_change)
        except Exception as exc:
            body["error_code"], body["error_message"] = error_for(exc, "alter partition reassignments")
            return body
    else:
        results = _single_host(services, wanted)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, code, message in results:
        by_topic.setdefault(topic, []).append({"partition_index": partition, "error_code": code,
                                               "error_message": message})
    body["responses"] = [{"name": t, "partitions": r} for t, r in by_topic.items()]
    return body
