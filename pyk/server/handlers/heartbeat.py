"""Heartbeat: a member shows it is alive; the answer tells it when the group rebalances."""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    code = services.groups.classic.heartbeat(request["group_id"], request["member_id"], request["generation_id"],
                                             request.get("group_instance_id"))
    return {"throttle_time_ms": 0, "error_code": code}
