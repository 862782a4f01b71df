"""DeleteGroups: removes empty groups with their committed offsets (tombstones in
`__consumer_offsets`); a group with members gets NON_EMPTY_GROUP."""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.DELETE_GROUPS
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    results = services.groups.delete_groups(request["groups_names"])
    return {"throttle_time_ms": 0, "results": [{"group_id": r.group_id, "error_code": r.error_code} for r in results]}
