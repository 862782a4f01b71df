"""InitProducerId for idempotent producers: a fresh producer id at epoch 0.

Ids come from the metadata store's persisted blocks, so they are unique across restarts.  As in
Kafka, a producer without a transactional.id gets a new id even when it names its old one (v3+),
which resets its sequences cleanly.  Transactional ids need the transaction coordinator, which
pyk does not have yet: they get INVALID_REQUEST with a message saying so.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey

API_KEY = ApiKey.INIT_PRODUCER_ID
MIN_VERSION = 0
MAX_VERSION = 4


async def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("transactional_id") is not None:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "producer_id": -1, "producer_epoch": -1}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "producer_id": await broker.next_producer_id(),
            "producer_epoch": 0}
