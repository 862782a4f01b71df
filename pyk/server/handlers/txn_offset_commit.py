"""TxnOffsetCommit: a consumer group's offsets committed inside a producer's transaction.

Served by the group's coordinator (pyk/coordinator/offset_metadata.py): the offsets become visible to
OffsetFetch only when the transaction's commit marker reaches the group's partition.
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.group import NO_GENERATION, UNKNOWN_MEMBER_ID
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import commit_partitions, nest_partition_errors, with_denied
from pyk.server.handlers.offset_commit import denied_topics
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.TXN_OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    topics = request["topics"]
    # WRITE on the transactional id first, then READ on the group and the topics (Kafka's order).
    if not services.authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request["transactional_id"]):
        denied = dict.fromkeys((t["name"] for t in topics), ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    else:
        denied = denied_topics(ctx, services, request["group_id"], topics)
    allowed = [t for t in topics if t["name"] not in denied]
    results = await services.groups.offsets.txn_commit_offsets(
        request["transactional_id"], request["producer_id"], request["producer_epoch"], request["group_id"],
        request.get("member_id", UNKNOWN_MEMBER_ID), request.get("generation_id", NO_GENERATION),
        request.get("group_instance_id"), commit_partitions(allowed)) if allowed else []
    return {"throttle_time_ms": 0, "topics": nest_partition_errors(topics, with_denied(topics, denied, results))}
