"""JoinGroup: a member joins (or rejoins) a consumer group and waits for the next generation.

The response is parked until the group's join phase ends (every member rejoined, the initial
delay passed, or the rebalance timeout expired); see pyk.coordinator.classic.  Before v7
the protocol name is not nullable: "no protocol" is sent as an empty string, as Kafka does.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.api import JoinGroupResult
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.JOIN_GROUP
MIN_VERSION = 0
MAX_VERSION = 9


def _shape(result: JoinGroupResult, version: int) -> dict[str, Any]:
    protocol_name = result.protocol_name
    if version < 7 and protocol_name is None:  # nullable from v7
        protocol_name = ""
    return {"throttle_time_ms": 0, "error_code": result.error_code, "generation_id": result.generation_id,
            "protocol_type": result.protocol_type, "protocol_name": protocol_name, "leader": result.leader,
            "skip_assignment": result.skip_assignment, "member_id": result.member_id,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
                        for m in result.members]}


async def _parked(services: ShardServices, group_id: str, result: Awaitable[JoinGroupResult],
                  version: int) -> dict[str, Any]:
    answer = _replicated(services, group_id, await result)
    return _shape(answer if isinstance(answer, JoinGroupResult) else await answer, version)


def _replicated(services: ShardServices, group_id: str,
                result: JoinGroupResult) -> JoinGroupResult | Awaitable[JoinGroupResult]:
    """A cluster: answered once the ISR has the group's records (a static member's new id;
    Kafka's runtime answers a join only once what was written before it is committed)."""
    if result.error_code != ErrorCode.NONE:
        return result
    return services.groups.once_replicated(group_id, result, lambda code: JoinGroupResult(
        code, -1, None, None, "", False, result.member_id, []))


async def _answer(answer: Awaitable[JoinGroupResult], version: int) -> dict[str, Any]:
    return _shape(await answer, version)


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    version = ctx.header.api_version
    group_id = request["group_id"]
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return _shape(JoinGroupResult(ErrorCode.GROUP_AUTHORIZATION_FAILED, -1, None, None, "", False,
                                      request["member_id"], []), version)
    result = services.groups.classic.join_group(
        group_id, request["member_id"], request.get("group_instance_id"), request["session_timeout_ms"],
        request.get("rebalance_timeout_ms", -1), request["protocol_type"],
        [(p["name"], bytes(p["metadata"])) for p in request["protocols"]], ctx.client_id, ctx.client_host, version)
    if not isinstance(result, JoinGroupResult):
        return _parked(services, group_id, result, version)
    answer = _replicated(services, group_id, result)
    return _shape(answer, version) if isinstance(answer, JoinGroupResult) else _answer(answer, version)
