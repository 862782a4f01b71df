"""ConsumerGroupDescribe (KIP-848): DescribeGroups for consumer-protocol groups, with the group
and assignment epochs, the assignor, and each member's subscription, current and target
assignment (topic ids and names).  Unknown and classic groups are GROUP_ID_NOT_FOUND, as in
Kafka, so an admin client falls back to DescribeGroups for the classic ones."""

from __future__ import annotations

from typing import Any

from pyk.coordinator.api import ConsumerGroupMember, DescribedConsumerGroup, DescribedTopicPartitions
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.CONSUMER_GROUP_DESCRIBE
MIN_VERSION = 0
MAX_VERSION = 1

UNKNOWN_OPERATIONS = -2147483648  # Kafka's value when the client does not ask
# With no authorizer Kafka reports every operation a group supports (AuthHelper.authorizedOperations
# with no authorizer): READ (3), DELETE (6), DESCRIBE (8) as a bit field.
GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    operations = GROUP_OPERATIONS if request["include_authorized_operations"] else UNKNOWN_OPERATIONS
    groups = []
    for group_id in request["group_ids"]:
        if services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            g = services.groups.describe_consumer_group(group_id)
        else:
            g = DescribedConsumerGroup(ErrorCode.GROUP_AUTHORIZATION_FAILED, None, group_id)
        groups.append({
            "error_code": g.error_code, "error_message": g.error_message, "group_id": g.group_id,
            "group_state": g.group_state, "group_epoch": g.group_epoch, "assignment_epoch": g.assignment_epoch,
            "assignor_name": g.assignor_name, "members": [_member(m) for m in g.members],
            "authorized_operations": operations})
    return {"throttle_time_ms": 0, "groups": groups}


def _member(m: ConsumerGroupMember) -> dict[str, Any]:
    return {"member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
            "member_epoch": m.member_epoch, "client_id": m.client_id, "client_host": m.client_host,
            "subscribed_topic_names": m.subscribed_topic_names, "subscribed_topic_regex": m.subscribed_topic_regex,
            "assignment": _assignment(m.assignment), "target_assignment": _assignment(m.target_assignment),
            "member_type": m.member_type}


def _assignment(parts: list[DescribedTopicPartitions]) -> dict[str, Any]:
    return {"topic_partitions": [{"topic_id": t.topic_id, "topic_name": t.topic_name, "partitions": t.partitions}
                                 for t in parts]}
