"""ConsumerGroupDescribe (KIP-848): DescribeGroups for consumer-protocol groups, with the group
and assignment epochs, the assignor, and each member's subscription, current and target
assignment (topic ids and names).  Unknown and classic groups are GROUP_ID_NOT_FOUND, as in
Kafka, so an admin client falls back to DescribeGroups for the classic ones."""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

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
        entry = services.groups.describe_consumer_group(group_id)
        entry["authorized_operations"] = operations
        groups.append(entry)
    return {"throttle_time_ms": 0, "groups": groups}
