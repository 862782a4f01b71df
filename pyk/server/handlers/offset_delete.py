"""OffsetDelete (KIP-496): removes a group's committed offsets for some partitions.

Allowed for an empty group, and for an active consumer group on topics it does not subscribe
to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import nest_partition_errors, topic_partitions

API_KEY = ApiKey.OFFSET_DELETE
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    code, results = services.groups.offsets.delete_offsets(request["group_id"], topic_partitions(request["topics"]))
    topics = nest_partition_errors(request["topics"], results) if code == ErrorCode.NONE else []
    return {"error_code": code, "throttle_time_ms": 0, "topics": topics}
