"""JoinGroup: a member joins (or rejoins) a consumer group and waits for the next generation.

The response is parked until the group's join phase ends (every member rejoined, the initial
delay passed, or the rebalance timeout expired); see pyk.coordinator.classic.  Before v7
the protocol name is not nullable: "no protocol" is sent as an empty string, as Kafka does.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.JOIN_GROUP
MIN_VERSION = 0
MAX_VERSION = 9


def _shape(body: dict[str, Any], version: int) -> dict[str, Any]:
    if version < 7 and body["protocol_name"] is None:
        body["protocol_name"] = ""
    body["throttle_time_ms"] = 0
    return body


async def _parked(result: Awaitable[dict[str, Any]], version: int) -> dict[str, Any]:
    return _shape(dict(await result), version)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    version = ctx.header.api_version
    result = services.groups.classic.join_group(request, ctx.client_id, ctx.client_host, version)
    if isinstance(result, dict):
        return _shape(result, version)
    return _parked(result, version)
