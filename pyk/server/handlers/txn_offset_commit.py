"""TxnOffsetCommit: a consumer group's offsets committed inside a producer's transaction.

Served by the group's coordinator (pyk/coordinator/offset_metadata.py): the offsets become visible to
OffsetFetch only when the transaction's commit marker reaches the group's partition.
"""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.TXN_OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "topics": await services.groups.offsets.txn_commit_offsets(request)}
