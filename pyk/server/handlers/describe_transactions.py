"""DescribeTransactions: state, producer and partitions of transactional ids (KIP-664).

Each id is answered by its coordinator; asked elsewhere it gets NOT_COORDINATOR, and an id the
coordinator does not know gets TRANSACTIONAL_ID_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.DESCRIBE_TRANSACTIONS
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0,
            "transaction_states": [services.txn.describe(tid) for tid in request["transactional_ids"]]}
