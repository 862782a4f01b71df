"""ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, stays alive, acknowledges
revocations and learns its assignment, all in one request; the broker assigns partitions.

See pyk.coordinator.consumer_group for the epochs and the reconciliation, and
pyk.coordinator.consumer for placement (FindCoordinator routes these groups like classic
ones), session and rebalance timeouts.  In a cluster a heartbeat is answered once the ISR of
the group's `__consumer_offsets` partition has its records and those written before (Kafka's
coordinator runtime answers a write only once committed).

With an authorizer (Kafka's handleConsumerGroupHeartbeat): READ on the group, then DESCRIBE on
every topic a subscription names, else TOPIC_AUTHORIZATION_FAILED (a client may not learn of
topics it cannot describe).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.api import ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResult, TopicPartitions
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.CONSUMER_GROUP_HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    group_id = request["group_id"]
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return _response(ConsumerGroupHeartbeatResult(ErrorCode.GROUP_AUTHORIZATION_FAILED, None, None, -1))
    subscribed = request.get("subscribed_topic_names")
    if subscribed and len(services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, subscribed)) \
            < len(set(subscribed)):
        return _response(ConsumerGroupHeartbeatResult(ErrorCode.TOPIC_AUTHORIZATION_FAILED, None, None, -1))
    owned = request.get("topic_partitions")
    heartbeat = ConsumerGroupHeartbeatRequest(
        group_id, request["member_id"], request["member_epoch"], request.get("instance_id"),
        request.get("rack_id"), request.get("rebalance_timeout_ms", -1), request.get("subscribed_topic_names"),
        request.get("subscribed_topic_regex"), request.get("server_assignor"),
        [TopicPartitions(t["topic_id"], t["partitions"]) for t in owned] if owned is not None else None)
    result = services.groups.consumer.heartbeat(heartbeat, ctx.client_id, ctx.client_host)
    if result.error_code != ErrorCode.NONE:
        return _response(result)
    answer = services.groups.once_replicated(  # Kafka's defaults in an error
        group_id, result, lambda code: ConsumerGroupHeartbeatResult(code, None, None, 0))
    return _response(answer) if isinstance(answer, ConsumerGroupHeartbeatResult) else _replicated(answer)


async def _replicated(answer: Awaitable[ConsumerGroupHeartbeatResult]) -> dict[str, Any]:
    return _response(await answer)


def _response(result: ConsumerGroupHeartbeatResult) -> dict[str, Any]:
    assignment = result.assignment
    return {"throttle_time_ms": 0, "error_code": result.error_code, "error_message": result.error_message,
            "member_id": result.member_id, "member_epoch": result.member_epoch,
            "heartbeat_interval_ms": result.heartbeat_interval_ms,
            "assignment": None if assignment is None else {"topic_partitions": [
                {"topic_id": t.topic_id, "partitions": t.partitions} for t in assignment.topic_partitions]}}
