"""Heartbeat: a member shows it is alive; the answer tells it when the group rebalances."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED}
    code = services.groups.classic.heartbeat(request["group_id"], request["member_id"], request["generation_id"],
                                             request.get("group_instance_id"))
    return {"throttle_time_ms": 0, "error_code": code}
