"""TxnOffsetCommit: a consumer group's offsets committed inside a producer's transaction.

Served by the group's coordinator (pyk/coordinator/offset_metadata.py): the offsets become visible to
OffsetFetch only when the transaction's commit marker reaches the group's partition.
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.group import NO_GENERATION, UNKNOWN_MEMBER_ID
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import commit_partitions, nest_partition_errors

API_KEY = ApiKey.TXN_OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    results = await services.groups.offsets.txn_commit_offsets(
        request["transactional_id"], request["producer_id"], request["producer_epoch"], request["group_id"],
        request.get("member_id", UNKNOWN_MEMBER_ID), request.get("generation_id", NO_GENERATION),
        request.get("group_instance_id"), commit_partitions(request["topics"]))
    return {"throttle_time_ms": 0, "topics": nest_partition_errors(request["topics"], results)}
