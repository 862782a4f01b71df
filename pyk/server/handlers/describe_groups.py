"""DescribeGroups: state, protocol and members (with their metadata and assignment once the
group is stable) of groups this node coordinates; an unknown group is described as Dead."""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.DESCRIBE_GROUPS
MIN_VERSION = 0
MAX_VERSION = 5

UNKNOWN_OPERATIONS = -2147483648  # no ACLs yet: operations are not reported


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    groups = []
    for group_id in request["groups"]:
        entry = services.groups.describe_group(group_id)
        entry["authorized_operations"] = UNKNOWN_OPERATIONS
        groups.append(entry)
    return {"throttle_time_ms": 0, "groups": groups}
