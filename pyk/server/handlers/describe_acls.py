"""DescribeAcls: pyk has no authorizer, so it answers as a Kafka broker without one does
(SECURITY_DISABLED), which clients read as "no ACLs to sync" (MirrorMaker 2's topic ACL sync,
`kafka-acls --list`) rather than as an unsupported API."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.DESCRIBE_ACLS
MIN_VERSION = 1
MAX_VERSION = 3

NO_AUTHORIZER = "No Authorizer is configured."  # Kafka's own message, which tools print


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.SECURITY_DISABLED, "error_message": NO_AUTHORIZER,
            "resources": []}
