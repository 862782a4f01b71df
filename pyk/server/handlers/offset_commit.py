"""OffsetCommit: a group's consumers store their positions in `__consumer_offsets`.

Commits are fenced by the member id and generation (v1+) and by group.instance.id (v7+); v0 and
commits without a generation come from consumers that use the group only to store offsets.
v9 is v8 and the first version a consumer-protocol (KIP-848) member may commit with: its member
epoch goes in the generation field.
"""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "topics": services.groups.offsets.commit_offsets(request, ctx.header.api_version)}
