"""CreateAcls: SECURITY_DISABLED for every creation (no authorizer; see describe_acls)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers.describe_acls import NO_AUTHORIZER

API_KEY = ApiKey.CREATE_ACLS
MIN_VERSION = 1
MAX_VERSION = 3


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    result = {"error_code": ErrorCode.SECURITY_DISABLED, "error_message": NO_AUTHORIZER}
    return {"throttle_time_ms": 0, "results": [result for _ in request["creations"]]}
