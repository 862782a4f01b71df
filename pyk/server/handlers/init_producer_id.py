"""InitProducerId: a producer id and epoch, for idempotent and transactional producers.

Without a transactional.id: a fresh producer id at epoch 0 from the metadata store's persisted
blocks (unique across restarts); as in Kafka, a producer without a transactional.id gets a new
id even when it names its old one (v3+), which resets its sequences cleanly.  With one: the
transaction coordinator of that id (pyk/coordinator/transaction.py) bumps the epoch, fencing
older instances, and aborts a transaction the previous instance left open.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.INIT_PRODUCER_ID
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    transactional_id = request.get("transactional_id")
    # WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the cluster
    # or WRITE on some topic (KIP-679), as Kafka's handleInitProducerIdRequest.
    if transactional_id is not None:
        allowed = services.authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)
        denied = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    else:
        allowed = (services.cluster_authorized(ctx, AclOperation.IDEMPOTENT_WRITE, audit=False)
                   or services.authorized_any(ctx, AclOperation.WRITE, ResourceType.TOPIC))
        denied = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    if not allowed:
        return {"throttle_time_ms": 0, "error_code": denied, "producer_id": -1, "producer_epoch": -1}
    if transactional_id is None:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "producer_id": await services.admin.next_producer_id(),
                "producer_epoch": 0}
    try:
        producer_id, epoch = await services.txn.init_producer_id(
            transactional_id, request["transaction_timeout_ms"], request.get("producer_id", -1),
            request.get("producer_epoch", -1), ctx.header.api_version)
    except Exception as exc:
        code, _ = error_for(exc, f"InitProducerId for {transactional_id!r}")
        return {"throttle_time_ms": 0, "error_code": code, "producer_id": -1, "producer_epoch": -1}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": epoch}
