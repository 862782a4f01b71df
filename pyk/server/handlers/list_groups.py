"""ListGroups: the groups this node coordinates (v4: only those in the given states, KIP-518).

Admin clients ask every node and merge the answers, since each node lists only its own groups.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.LIST_GROUPS
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    groups = [{"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.group_state}
              for g in services.groups.list_groups(request.get("states_filter") or [])]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}
