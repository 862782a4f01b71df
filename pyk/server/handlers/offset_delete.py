"""OffsetDelete (KIP-496): removes a group's committed offsets for some partitions.

Allowed for an empty group, and for an active consumer group on topics it does not subscribe
to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).  In a cluster, answered once the ISR of the group's
`__consumer_offsets` partition has the tombstones.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.offset_metadata import OffsetDeleteResult
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import nest_partition_errors, topic_partitions, with_denied
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.OFFSET_DELETE
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    wanted = request["topics"]
    # DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on each topic (Kafka's rule).
    if not services.authorized(ctx, AclOperation.DELETE, ResourceType.GROUP, request["group_id"]):
        return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "throttle_time_ms": 0, "topics": []}
    names = {t["name"] for t in wanted}
    denied = dict.fromkeys(names - services.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, names),
                           ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    allowed = [t for t in wanted if t["name"] not in denied]
    answer = services.groups.offsets.delete_offsets(request["group_id"], topic_partitions(allowed))
    if isinstance(answer, tuple):
        return _response(wanted, denied, answer)
    return _replicated(wanted, denied, answer)


async def _replicated(wanted: list[dict[str, Any]], denied: dict[str, ErrorCode],
                      answer: Awaitable[OffsetDeleteResult]) -> dict[str, Any]:
    return _response(wanted, denied, await answer)


def _response(wanted: list[dict[str, Any]], denied: dict[str, ErrorCode], answer: OffsetDeleteResult) -> dict[str, Any]:
    code, results = answer
    topics = nest_partition_errors(wanted, with_denied(wanted, denied, results)) if code == ErrorCode.NONE else []
    return {"error_code": code, "throttle_time_ms": 0, "topics": topics}
