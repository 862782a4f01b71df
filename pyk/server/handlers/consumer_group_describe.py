"""ConsumerGroupDescribe (KIP-848): DescribeGroups for consumer-protocol groups, with the group
and assignment epochs, the assignor, and each member's subscription, current and target
assignment (topic ids and names).  Unknown and classic groups are GROUP_ID_NOT_FOUND, as in
Kafka, so an admin client falls back to DescribeGroups for the classic ones.

With an authorizer (Kafka 4.1's handleConsumerGroupDescribe): DESCRIBE on each group, and on
every topic of its members' current and target assignments; a group naming a topic the caller
may not describe is answered TOPIC_AUTHORIZATION_FAILED without members."""

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


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    groups = []
    for group_id in request["group_ids"]:
        # When asked: the operations the principal may do on the group as a bit field (with no
        # authorizer every one a group has: READ, DELETE, DESCRIBE), as Kafka reports them.
        operations = UNKNOWN_OPERATIONS
        if services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            g = _hiding_no_topic(ctx, services, services.groups.describe_consumer_group(group_id))
            if request["include_authorized_operations"] and g.error_code == ErrorCode.NONE:
                operations = services.authorized_operations(ctx, ResourceType.GROUP, group_id)
        else:
            g = DescribedConsumerGroup(ErrorCode.GROUP_AUTHORIZATION_FAILED, None, group_id)
        groups.append({
            "error_code": g.error_code, "error_message": g.error_message, "group_id": g.group_id,
            "group_state": g.group_state, "group_epoch": g.group_epoch, "assignment_epoch": g.assignment_epoch,
            "assignor_name": g.assignor_name, "members": [_member(m) for m in g.members],
            "authorized_operations": operations})
    return {"throttle_time_ms": 0, "groups": groups}


def _hiding_no_topic(ctx: RequestContext, services: ShardServices, g: DescribedConsumerGroup) -> DescribedConsumerGroup:
    """`g`, or TOPIC_AUTHORIZATION_FAILED if its assignments name a topic the caller may not DESCRIBE."""
    topics = {t.topic_name for m in g.members for t in (*m.assignment, *m.target_assignment)}
    if not topics or len(services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, topics)) == len(topics):
        return g
    return DescribedConsumerGroup(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "The group has described topic(s) that the "
                                  "client is not authorized to describe.", g.group_id)


def _member(m: ConsumerGroupMember) -> dict[str, Any]:
    return {"member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
            "member_epoch": m.member_epoch, "client_id": m.client_id, "client_host": m.client_host,
            "subscribed_topic_names": m.subscribed_topic_names, "subscribed_topic_regex": m.subscribed_topic_regex,
            "assignment": _assignment(m.assignment), "target_assignment": _assignment(m.target_assignment),
            "member_type": m.member_type}


def _assignment(parts: list[DescribedTopicPartitions]) -> dict[str, Any]:
    return {"topic_partitions": [{"topic_id": t.topic_id, "topic_name": t.topic_name, "partitions": t.partitions}
                                 for t in parts]}
