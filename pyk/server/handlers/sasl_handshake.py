"""SaslHandshake outside a SASL listener's authentication (pyk.server.security.sasl answers it
there): ILLEGAL_SASL_STATE, as Kafka's KafkaApis answers it."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.SASL_HANDSHAKE
MIN_VERSION = 1
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
