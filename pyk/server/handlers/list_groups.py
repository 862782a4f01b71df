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
    groups = services.groups.list_groups(request.get("states_filter") or [])
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}
