"""EndTxn: commit or abort a producer's transaction.

Answered once PrepareCommit/PrepareAbort is written to `__transaction_state` (in a cluster: once
its ISR has it; the decision is then durable, and only then is it the id's state); the markers
follow in the background, and the producer's next transactional request gets
CONCURRENT_TRANSACTIONS until they are all written (pyk/coordinator/transaction.py).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.END_TXN
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    tid = request["transactional_id"]
    try:
        services.require(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, tid)
        await services.txn.end_txn(tid, request["producer_id"], request["producer_epoch"], request["committed"],
                                   ctx.header.api_version)  # a cluster: once the ISR has the decision
        code = ErrorCode.NONE
    except Exception as exc:
        code, _ = error_for(exc, f"EndTxn for {tid!r}")
    return {"throttle_time_ms": 0, "error_code": code}
