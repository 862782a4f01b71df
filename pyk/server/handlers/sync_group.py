"""SyncGroup: members of a new generation receive their assignment from the leader's.

Followers wait until the leader's SyncGroup arrives and its assignment is written to
`__consumer_offsets` (in a cluster: until the partition's ISR has it); in a stable group the
current assignment is returned at once.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.api import SyncGroupResult
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.SYNC_GROUP
MIN_VERSION = 0
MAX_VERSION = 5


def _shape(result: SyncGroupResult) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": result.error_code, "protocol_type": result.protocol_type,
            "protocol_name": result.protocol_name, "assignment": result.assignment}


async def _parked(services: ShardServices, group_id: str, result: Awaitable[SyncGroupResult]) -> dict[str, Any]:
    answer = _replicated(services, group_id, await result)
    return _shape(answer if isinstance(answer, SyncGroupResult) else await answer)


def _replicated(services: ShardServices, group_id: str,
                result: SyncGroupResult) -> SyncGroupResult | Awaitable[SyncGroupResult]:
    """A cluster: the assignment is answered once the ISR has the group's metadata (Kafka
    stores it with acks=-1); else the mapped error and no assignment."""
    if result.error_code != ErrorCode.NONE:
        return result
    return services.groups.once_replicated(group_id, result, lambda code: SyncGroupResult(code, None, None, b""))


async def _answer(answer: Awaitable[SyncGroupResult]) -> dict[str, Any]:
    return _shape(await answer)


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    group_id = request["group_id"]
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return _shape(SyncGroupResult(ErrorCode.GROUP_AUTHORIZATION_FAILED, None, None, b""))
    result = services.groups.classic.sync_group(
        group_id, request["member_id"], request["generation_id"], request.get("group_instance_id"),
        request.get("protocol_type"), request.get("protocol_name"),
        {a["member_id"]: bytes(a["assignment"]) for a in request["assignments"]})
    if not isinstance(result, SyncGroupResult):
        return _parked(services, group_id, result)
    answer = _replicated(services, group_id, result)
    return _shape(answer) if isinstance(answer, SyncGroupResult) else _answer(answer)
