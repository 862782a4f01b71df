"""LeaveGroup: members leave a group at once instead of timing out (v3+: many members, and
removal of static members by group.instance.id, KIP-345).

Before v3 the request names one member and its error is the response's only error code.  In a
cluster the answer waits until the ISR of the group's `__consumer_offsets` partition has the
group's new metadata (Kafka answers LeaveGroup once it is committed).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.api import LeaveGroupResult, MemberIdentity
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.LEAVE_GROUP
MIN_VERSION = 0
MAX_VERSION = 5


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    version = ctx.header.api_version
    if version >= 3:
        members = [MemberIdentity(m["member_id"], m.get("group_instance_id")) for m in request["members"]]
    else:
        members = [MemberIdentity(request["member_id"])]
    group_id = request["group_id"]
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "members": []}
    result = services.groups.classic.leave_group(group_id, members)
    if result.error_code != ErrorCode.NONE:
        return _response(version, result)
    answer = services.groups.once_replicated(group_id, result, lambda code: LeaveGroupResult(code, []))
    return _response(version, answer) if isinstance(answer, LeaveGroupResult) else _replicated(version, answer)


async def _replicated(version: int, answer: Awaitable[LeaveGroupResult]) -> dict[str, Any]:
    return _response(version, await answer)


def _response(version: int, result: LeaveGroupResult) -> dict[str, Any]:
    code = result.error_code
    if version < 3 and code == ErrorCode.NONE and result.members:  # v0-v2: the one member's error
        code = result.members[0].error_code
    return {"throttle_time_ms": 0, "error_code": code,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "error_code": m.error_code}
                        for m in result.members]}
