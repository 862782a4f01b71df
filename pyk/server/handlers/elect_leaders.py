"""ElectLeaders (KIP-460): a preferred replica election (type 0) moves each partition's
leadership back to its first replica when it is alive and in sync; an unclean one (type 1)
gives a partition without a live leader the first live replica, in sync or not.  In a cluster
the controller host's ZooKeeper session writes the states, fenced by its controller epoch
(pyk.cluster.zk); any other host answers NOT_CONTROLLER, and clients send the request to the
controller Metadata names, as to Kafka's.  A single host has nothing to elect (its one replica
always leads).  As Kafka's DelayedElectLeader, the answer waits up to the
request's timeout_ms until the new leaders are in this host's metadata, and then until each new
leader serves its partition at the new leader epoch (it learns the election through its own
host's ZooKeeper watch); REQUEST_TIMED_OUT for the partitions whose election did not get there
in time."""

from __future__ import annotations

import asyncio
from typing import Any

from pyk.client import Connection
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.ELECT_LEADERS
MIN_VERSION = 0
MAX_VERSION = 2

PREFERRED, UNCLEAN = 0, 1
_PROBE_INTERVAL_S = 0.05  # how often a new leader not serving its partition yet is asked again


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
    serving = {tp: (info.leaders[tp[1]], info.epochs[tp[1]]) for tp in elected.keys() - left
               if (info := services.metadata.get(tp[0])) is not None}
    return left | await _not_led_yet(services, serving, deadline)


async def _not_led_yet(services: ShardServices, serving: dict[tuple[str, int], tuple[int, int]],
                       deadline: float) -> set[tuple[str, int]]:
    """The partitions whose new leader (node, leader epoch) does not serve them at that epoch by
    `deadline`, asked of each leader itself (ListOffsets with the epoch as its current leader
    epoch: NOT_LEADER_OR_FOLLOWER or UNKNOWN_LEADER_EPOCH until its host applied the election)."""
    loop = asyncio.get_running_loop()
    endpoints = {b["node_id"]: (b["host"], b["port"]) for b in services.brokers()}  # inter-broker listener
    left = dict(serving)
    conns: dict[int, Connection] = {}
    try:
        while left:
            for node in {leader for leader, _ in left.values()}:
                asked = {tp: epoch for tp, (leader, epoch) in left.items() if leader == node}
                try:
                    if node not in conns:
                        conns[node] = await services.inter_broker.connect(*endpoints[node], "pyk-elect-leaders")
                    answer = await asyncio.wait_for(conns[node].request(ApiKey.LIST_OFFSETS, 4, {
                        "replica_id": -1, "isolation_level": 0, "topics": [
                            {"name": t, "partitions": [{"partition_index": p, "current_leader_epoch": e, "timestamp": -1}]}
                            for (t, p), e in asked.items()]}), max(deadline - loop.time(), 0.01))
                except (OSError, ConnectionError, KeyError, asyncio.TimeoutError):
                    conns.pop(node, None)
                    continue
                for topic in answer["topics"]:
                    for part in topic["partitions"]:
                        if part["error_code"] in (ErrorCode.NONE, ErrorCode.FENCED_LEADER_EPOCH):  # or later
                            left.pop((topic["name"], part["partition_index"]), None)
            if not left or loop.time() + _PROBE_INTERVAL_S > deadline:
                break
            await asyncio.sleep(_PROBE_INTERVAL_S)
    finally:
        for conn in conns.values():
            conn.close()
    return set(left)


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
