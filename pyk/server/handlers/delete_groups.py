"""DeleteGroups: removes empty groups with their committed offsets (tombstones in
`__consumer_offsets`); a group with members gets NON_EMPTY_GROUP."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DELETE_GROUPS
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    names = request["groups_names"]
    allowed = services.authorized_names(ctx, AclOperation.DELETE, ResourceType.GROUP, names)
    deleted = {r.group_id: r.error_code for r in services.groups.delete_groups([n for n in names if n in allowed])}
    return {"throttle_time_ms": 0, "results": [
        {"group_id": n, "error_code": deleted[n] if n in allowed else ErrorCode.GROUP_AUTHORIZATION_FAILED}
        for n in dict.fromkeys(names)]}
