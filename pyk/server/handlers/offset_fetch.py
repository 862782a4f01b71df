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

from pyk.coordinator.api import OffsetFetchResult, TopicPartition
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import topic_partitions

API_KEY = ApiKey.OFFSET_FETCH
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    offsets = services.groups.offsets
    stable = request.get("require_stable", False)
    if version >= 8:
        groups = []
        for item in request["groups"]:
            result = offsets.fetch_offsets(item["group_id"], _wanted(item["topics"]), stable, item.get("member_id"),
                                           item.get("member_epoch", -1))
            groups.append({"group_id": item["group_id"], "topics": _topics(result, item["topics"]),
                           "error_code": result.error_code})
        return {"throttle_time_ms": 0, "groups": groups}
    wanted = request["topics"]
    result = offsets.fetch_offsets(request["group_id"], _wanted(wanted), stable)
    topics = _topics(result, wanted)
    if result.error_code != ErrorCode.NONE and version < 2:
        topics = [{"name": t["name"], "partitions": [
            {"partition_index": i, "committed_offset": -1, "metadata": "", "error_code": result.error_code}
            for i in t["partition_indexes"]]} for t in wanted or []]  # fmt: skip
    return {"throttle_time_ms": 0, "topics": topics, "error_code": result.error_code}


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
