"""ElectLeaders (KIP-460): a preferred replica election (type 0) moves each partition's
leadership back to its first replica when it is alive and in sync; an unclean one (type 1)
gives a partition without a live leader the first live replica, in sync or not.  In a cluster
the host's ZooKeeper session writes the states (pyk.cluster.zk); a single host has nothing to
elect (its one replica always leads)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.ELECT_LEADERS
MIN_VERSION = 0
MAX_VERSION = 2

PREFERRED, UNCLEAN = 0, 1


def _requested(request: dict[str, Any]) -> list[tuple[str, int]] | None:
    topics = request.get("topic_partitions")
    if topics is None:
        return None
    return [(t["topic"], p) for t in topics for p in t["partitions"]]


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    election_type = request.get("election_type", PREFERRED)
    wanted = _requested(request)
    body: dict[str, Any] = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
    results: list[tuple[str, int, int, str | None]]
    if not services.cluster_authorized(ctx, AclOperation.ALTER):  # Kafka: the request and each partition named
        body["error_code"] = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        results = [(t, p, int(ErrorCode.CLUSTER_AUTHORIZATION_FAILED), None) for t, p in wanted or []]
    elif election_type not in (PREFERRED, UNCLEAN):
        body["error_code"] = ErrorCode.INVALID_REQUEST
        return body
    elif services.metadata.clustered:
        try:
            results = await services.admin.elect_leaders(election_type, wanted)
        except Exception as exc:
            body["error_code"] = error_for(exc, "elect leaders")[0]
            return body
    else:
        every = [(t.name, p) for t in services.metadata.topics.values() for p in range(t.partitions)]
        known = set(every)
        results = [(t, p, int(ErrorCode.ELECTION_NOT_NEEDED if (t, p) in known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
                    None) for t, p in (every if wanted is None else wanted)]
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, code, message in results:
        by_topic.setdefault(topic, []).append({"partition_id": partition, "error_code": code, "error_message": message})
    body["replica_election_results"] = [{"topic": t, "partition_result": r} for t, r in by_topic.items()]
    return body
