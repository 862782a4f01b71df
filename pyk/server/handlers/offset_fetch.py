"""OffsetFetch: a group's committed offsets (-1 where none is committed).

v2+ may ask for every committed offset (topics null) and carries a group-level error; v8
(KIP-709) asks for many groups at once.  v0-v1 have no group-level error, so a group error is
repeated on each requested partition.  v7+ `require_stable` (KIP-447) makes a partition with
transactional offsets awaiting their marker answer UNSTABLE_OFFSET_COMMIT.  v9 (KIP-848) names
the fetching member in each group entry; a consumer-protocol member with a stale epoch gets
STALE_MEMBER_EPOCH for its group.
"""

from __future__ import annotations

import itertools
from typing import Any

from pyk.coordinator.api import OffsetFetchPartition, OffsetFetchResult, TopicPartition
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import topic_partitions
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.OFFSET_FETCH
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    stable = request.get("require_stable", False)
    if version >= 8:
        groups = []
        for item in request["groups"]:
            result = _fetch(ctx, services, item["group_id"], item["topics"], stable, item.get("member_id"),
                            item.get("member_epoch", -1))
            groups.append({"group_id": item["group_id"], "topics": _topics(result, item["topics"]),
                           "error_code": result.error_code})
        return {"throttle_time_ms": 0, "groups": groups}
    wanted = request["topics"]
    result = _fetch(ctx, services, request["group_id"], wanted, stable)
    topics = _topics(result, wanted)
    if result.error_code != ErrorCode.NONE and version < 2:
        topics = [{"name": t["name"], "partitions": [
            {"partition_index": i, "committed_offset": -1, "metadata": "", "error_code": result.error_code}
            for i in t["partition_indexes"]]} for t in wanted or []]  # fmt: skip
    return {"throttle_time_ms": 0, "topics": topics, "error_code": result.error_code}


def _fetch(ctx: RequestContext, services: ShardServices, group_id: str, topics: list[dict[str, Any]] | None,
           stable: bool, member_id: str | None = None, member_epoch: int = -1) -> OffsetFetchResult:
    """The group's committed offsets as the principal may see them (Kafka's rules): none without
    DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED); of a topic it may not DESCRIBE, left out
    when all were asked for, else TOPIC_AUTHORIZATION_FAILED."""
    if not services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
        return OffsetFetchResult(ErrorCode.GROUP_AUTHORIZATION_FAILED, [])
    result = services.groups.offsets.fetch_offsets(group_id, _wanted(topics), stable, member_id, member_epoch)
    if services.authorizer is None or result.error_code != ErrorCode.NONE:
        return result
    names = {p.topic for p in result.partitions}
    shown = services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names, audit=topics is not None)
    if len(shown) == len(names):
        return result
    if topics is None:
        return OffsetFetchResult(result.error_code, [p for p in result.partitions if p.topic in shown])
    return OffsetFetchResult(result.error_code, [
        p if p.topic in shown else OffsetFetchPartition(p.topic, p.partition, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        for p in result.partitions])


def _wanted(topics: list[dict[str, Any]] | None) -> list[TopicPartition] | None:
    """The partitions asked for; None (v2+: topics null) asks for every committed one."""
    return topic_partitions(topics, "partition_indexes") if topics is not None else None


def _topics(result: OffsetFetchResult, wanted: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The answer's partitions (in request order) under the request's topics; under their own
    topics when every committed offset was asked for; none with a group error."""
    if result.error_code != ErrorCode.NONE:
        return []
    partitions = result.partitions
    if wanted is None:
        wanted = [{"name": name, "partition_indexes": list(rows)}
                  for name, rows in itertools.groupby(partitions, key=lambda p: p.topic)]
    rows = iter(partitions)
    return [{"name": t["name"], "partitions": [
        {"partition_index": p.partition, "committed_offset": p.committed_offset,
         "committed_leader_epoch": p.committed_leader_epoch, "metadata": p.metadata, "error_code": p.error_code}
        for p in itertools.islice(rows, len(t["partition_indexes"]))]} for t in wanted]
