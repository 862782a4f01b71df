"""ElectLeaders (KIP-460): a preferred replica election (type 0) moves each partition's
leadership back to its first replica when it is alive and in sync; an unclean one (type 1)
gives a partition without a live leader the first live replica, in sync or not.  In a cluster
the host's ZooKeeper session writes the states (pyk.cluster.zk); a single host has nothing to
elect (its one replica always leads).  As Kafka's DelayedElectLeader, the answer waits up to the
request's timeout_ms until the new leaders are in this host's metadata (REQUEST_TIMED_OUT for
the partitions whose election did not get there in time)."""

from __future__ import annotations

import asyncio
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for

API_KEY = ApiKey.ELECT_LEADERS
MIN_VERSION = 0
MAX_VERSION = 2

PREFERRED, UNCLEAN = 0, 1


def _requested(request: dict[str, Any]) -> list[tuple[str, int]] | None:
    topics = request.get("topic_partitions")
    if topics is None:
        return None
    return [(t["topic"], p) for t in topics for p in t["partitions"]]


def _epochs(services: ShardServices) -> dict[tuple[str, int], int]:
    return {(t.name, p): epoch for t in services.metadata.topics.values() for p, epoch in enumerate(t.epochs)}


async def _not_reached(services: ShardServices, elected: dict[tuple[str, int], int],
                       timeout_ms: int) -> set[tuple[str, int]]:
    """The elected partitions whose new leader (a leader epoch above the one before) is not in
    this host's metadata within `timeout_ms` (Kafka's DelayedElectLeader)."""
    def pending() -> set[tuple[str, int]]:
        left = set()
        for (topic, partition), epoch in elected.items():
            info = services.metadata.get(topic)
            if info is None or partition >= len(info.epochs) or info.epochs[partition] <= epoch \
                    or info.leaders[partition] < 0:
                left.add((topic, partition))
        return left

    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout_ms, 0) / 1000
    left = pending()
    while left and (remaining := deadline - loop.time()) > 0:
        try:
            await asyncio.wait_for(services.metadata.next_snapshot(), remaining)
        except asyncio.TimeoutError:
            break
        left = pending()
    return left


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    election_type = request.get("election_type", PREFERRED)
    wanted = _requested(request)
    body: dict[str, Any] = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": []}
    if election_type not in (PREFERRED, UNCLEAN):
        body["error_code"] = ErrorCode.INVALID_REQUEST
        return body
    results: list[tuple[str, int, int, str | None]]
    if services.metadata.clustered:
        before = _epochs(services)
        try:
            results = await services.admin.elect_leaders(election_type, wanted)
        except Exception as exc:
            body["error_code"] = error_for(exc, "elect leaders")[0]
            return body
        elected = {(t, p): before.get((t, p), -1) for t, p, code, _ in results if code == ErrorCode.NONE}
        late = await _not_reached(services, elected, request["timeout_ms"])
        results = [(t, p, int(ErrorCode.REQUEST_TIMED_OUT), "the election did not reach the leaders in time")
                   if (t, p) in late else (t, p, code, message) for t, p, code, message in results]
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
