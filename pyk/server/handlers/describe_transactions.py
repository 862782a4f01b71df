"""DescribeTransactions: state, producer and partitions of transactional ids (KIP-664).

Each id is answered by its coordinator; asked elsewhere it gets NOT_COORDINATOR, and an id the
coordinator does not know gets TRANSACTIONAL_ID_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_TRANSACTIONS
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0,
            "transaction_states": [_describe(ctx, services, tid) for tid in request["transactional_ids"]]}


def _describe(ctx: RequestContext, services: ShardServices, tid: str) -> dict[str, Any]:
    """DESCRIBE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka's
    defaults in the other fields); its partitions listed only on topics it may DESCRIBE."""
    if not services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, tid):
        return {"transactional_id": tid, "error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "transaction_state": "", "transaction_timeout_ms": 0, "transaction_start_time_ms": 0,
                "producer_id": 0, "producer_epoch": 0, "topics": []}
    entry = services.txn.describe(tid)
    if services.authorizer is not None and entry["topics"]:
        names = {t["topic"] for t in entry["topics"]}
        shown = services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names, audit=False)
        entry["topics"] = [t for t in entry["topics"] if t["topic"] in shown]
    return entry
