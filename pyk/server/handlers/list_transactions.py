"""ListTransactions: the transactional ids this node coordinates (KIP-664, `kafka-transactions.sh list`).

Filters: states (Kafka's names; unknown ones are echoed back in unknown_state_filters), producer
ids, and v1's duration (KIP-994: transactions open for at least that many ms).  Admin clients
ask every node and merge the answers.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.LIST_TRANSACTIONS
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    unknown, states = services.txn.list_transactions(request["state_filters"], request["producer_id_filters"],
                                                   request.get("duration_filter", -1))
    # Only the ids the principal may DESCRIBE (Kafka's rule: filtered, not refused).
    shown = services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID,
                                      (s["transactional_id"] for s in states), audit=False)
    states = [s for s in states if s["transactional_id"] in shown]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "unknown_state_filters": unknown,
            "transaction_states": states}
