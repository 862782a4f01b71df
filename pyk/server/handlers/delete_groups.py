"""DeleteGroups: removes empty groups with their committed offsets (tombstones in
`__consumer_offsets`); a group with members gets NON_EMPTY_GROUP.  In a cluster each deleted
group is answered once the ISR of its `__consumer_offsets` partition has the tombstones."""

from __future__ import annotations

from typing import Any

from pyk.coordinator.api import DeletableGroupResult
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DELETE_GROUPS
MIN_VERSION = 0
MAX_VERSION = 2


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    names = request["groups_names"]
    allowed = services.authorized_names(ctx, AclOperation.DELETE, ResourceType.GROUP, names)
    deleted = {}
    for result in services.groups.delete_groups([n for n in names if n in allowed]):
        deleted[result.group_id] = await _replicated(services, result) if result.error_code == ErrorCode.NONE \
            else result.error_code
    return {"throttle_time_ms": 0, "results": [
        {"group_id": n, "error_code": deleted[n] if n in allowed else ErrorCode.GROUP_AUTHORIZATION_FAILED}
        for n in dict.fromkeys(names)]}


async def _replicated(services: ShardServices, result: DeletableGroupResult) -> ErrorCode:
    answer = services.groups.once_replicated(result.group_id, result,
                                             lambda code: DeletableGroupResult(result.group_id, code))
    return (answer if isinstance(answer, DeletableGroupResult) else await answer).error_code
