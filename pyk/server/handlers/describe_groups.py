"""DescribeGroups: state, protocol and members (with their metadata and assignment once the
group is stable) of groups this node coordinates.  An unknown group is described as Dead; from
v6 on (KIP-1043) also with GROUP_ID_NOT_FOUND and Kafka's message, "Group <id> not found."."""

from __future__ import annotations

from typing import Any

from pyk.coordinator.api import DescribedGroup
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_GROUPS
MIN_VERSION = 0
MAX_VERSION = 6

UNKNOWN_OPERATIONS = -2147483648  # Kafka's value when the client does not ask


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    groups = []
    for group_id in request["groups"]:
        if services.authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
            g = services.groups.describe_group(group_id)
        else:
            g = DescribedGroup(ErrorCode.GROUP_AUTHORIZATION_FAILED, group_id, group_state="")
        error_code, error_message = g.error_code, None
        operations = UNKNOWN_OPERATIONS  # v3+, when asked: the principal's operations on a described group
        if error_code == ErrorCode.NONE and request.get("include_authorized_operations"):
            operations = services.authorized_operations(ctx, ResourceType.GROUP, group_id)
        if error_code == ErrorCode.GROUP_ID_NOT_FOUND:
            if ctx.header.api_version >= 6:
                error_message = f"Group {group_id} not found."
            else:
                error_code = ErrorCode.NONE
        groups.append({
            "error_code": error_code, "error_message": error_message, "group_id": g.group_id, "group_state": g.group_state,
            "protocol_type": g.protocol_type, "protocol_data": g.protocol_data,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                         "client_host": m.client_host, "member_metadata": m.member_metadata,
                         "member_assignment": m.member_assignment} for m in g.members],
            "authorized_operations": operations})
    return {"throttle_time_ms": 0, "groups": groups}
