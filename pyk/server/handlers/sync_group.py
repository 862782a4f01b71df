"""SyncGroup: members of a new generation receive their assignment from the leader's.

Followers wait until the leader's SyncGroup arrives and its assignment is written to
`__consumer_offsets`; in a stable group the current assignment is returned at once.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.SYNC_GROUP
MIN_VERSION = 0
MAX_VERSION = 5


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    body["throttle_time_ms"] = 0
    return body


async def _parked(result: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    return _shape(dict(await result))


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    result = services.groups.classic.sync_group(request)
    if isinstance(result, dict):
        return _shape(result)
    return _parked(result)
