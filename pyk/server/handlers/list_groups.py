"""ListGroups: the groups this node coordinates (v4: only those in the given states, KIP-518).

Admin clients ask every node and merge the answers, since each node lists only its own groups.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.LIST_GROUPS
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    listed = services.groups.list_groups(request.get("states_filter") or [])
    # DESCRIBE on the cluster lists every group, else those the principal may DESCRIBE (Kafka's rule).
    if not services.cluster_authorized(ctx, AclOperation.DESCRIBE, audit=False):
        shown = services.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.GROUP,
                                          (g.group_id for g in listed), audit=False)
        listed = [g for g in listed if g.group_id in shown]
    groups = [{"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.group_state}
              for g in listed]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}
