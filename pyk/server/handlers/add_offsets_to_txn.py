"""AddOffsetsToTxn: a consumer group's offsets join a producer's transaction (sendOffsetsToTransaction).

The group's `__consumer_offsets` partition is added to the transaction, so that the group
coordinator accepts the producer's TxnOffsetCommit and the transaction's marker reaches it.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.ADD_OFFSETS_TO_TXN
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    tid = request["transactional_id"]
    try:
        services.require(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, tid)
        services.require(ctx, AclOperation.READ, ResourceType.GROUP, request["group_id"])
        await services.txn.add_offsets(tid, request["producer_id"], request["producer_epoch"], request["group_id"],
                                     ctx.header.api_version)
        code = ErrorCode.NONE
    except Exception as exc:
        code, _ = error_for(exc, f"AddOffsetsToTxn for {tid!r}")
    return {"throttle_time_ms": 0, "error_code": code}
