"""ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, stays alive, acknowledges
revocations and learns its assignment, all in one request; the broker assigns partitions.

See pyk.coordinator.consumer_group for the epochs and the reconciliation, and
pyk.coordinator.consumer for placement (FindCoordinator routes these groups like classic
ones), session and rebalance timeouts.

With an authorizer (Kafka's handleConsumerGroupHeartbeat): READ on the group, then DESCRIBE on
every topic a subscription names, else TOPIC_AUTHORIZATION_FAILED (a client may not learn of
topics it cannot describe).
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.api import ConsumerGroupHeartbeatRequest, TopicPartitions
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.CONSUMER_GROUP_HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 1


def _refused(code: ErrorCode) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": None, "member_id": None, "member_epoch": -1,
            "heartbeat_interval_ms": 0, "assignment": None}


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, request["group_id"]):
        return _refused(ErrorCode.GROUP_AUTHORIZATION_FAILED)
    subscribed = request.get("subscribed_topic_names")
    if subscribed and len(services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, subscribed)) \
            < len(set(subscribed)):
        return _refused(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    owned = request.get("topic_partitions")
    heartbeat = ConsumerGroupHeartbeatRequest(
        request["group_id"], request["member_id"], request["member_epoch"], request.get("instance_id"),
        request.get("rack_id"), request.get("rebalance_timeout_ms", -1), request.get("subscribed_topic_names"),
        request.get("subscribed_topic_regex"), request.get("server_assignor"),
        [TopicPartitions(t["topic_id"], t["partitions"]) for t in owned] if owned is not None else None)
    result = services.groups.consumer.heartbeat(heartbeat, ctx.client_id, ctx.client_host)
    assignment = result.assignment
    return {"throttle_time_ms": 0, "error_code": result.error_code, "error_message": result.error_message,
            "member_id": result.member_id, "member_epoch": result.member_epoch,
            "heartbeat_interval_ms": result.heartbeat_interval_ms,
            "assignment": None if assignment is None else {"topic_partitions": [
                {"topic_id": t.topic_id, "partitions": t.partitions} for t in assignment.topic_partitions]}}
