"""OffsetFetch: a group's committed offsets (-1 where none is committed).

v2+ may ask for every committed offset (topics null) and carries a group-level error; v8
(KIP-709) asks for many groups at once.  v0-v1 have no group-level error, so a group error is
repeated on each requested partition.  v7+ `require_stable` (KIP-447) makes a partition with
transactional offsets awaiting their marker answer UNSTABLE_OFFSET_COMMIT.  v9 (KIP-848) names
the fetching member in each group entry; a consumer-protocol member with a stale epoch gets
STALE_MEMBER_EPOCH for its group.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.OFFSET_FETCH
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    coordinator = services.groups.offsets
    stable = request.get("require_stable", False)
    if version >= 8:
        groups = []
        for item in request["groups"]:
            code, topics = coordinator.fetch_offsets(item["group_id"], item["topics"], stable,
                                                     item.get("member_id"), item.get("member_epoch", -1))
            groups.append({"group_id": item["group_id"], "topics": topics, "error_code": code})
        return {"throttle_time_ms": 0, "groups": groups}
    wanted = request["topics"]
    code, topics = coordinator.fetch_offsets(request["group_id"], wanted, stable)
    if code != ErrorCode.NONE and version < 2:
        topics = [{"name": t["name"], "partitions": [
            {"partition_index": i, "committed_offset": -1, "metadata": "", "error_code": code}
            for i in t["partition_indexes"]]} for t in wanted or []]  # fmt: skip
    return {"throttle_time_ms": 0, "topics": topics, "error_code": code}
