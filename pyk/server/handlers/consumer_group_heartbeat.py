"""ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, stays alive, acknowledges
revocations and learns its assignment, all in one request; the broker assigns partitions.

See pyk.coordinator.consumer_group for the epochs and the reconciliation, and
pyk.coordinator.consumer for placement (FindCoordinator routes these groups like classic
ones), session and rebalance timeouts.
"""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.CONSUMER_GROUP_HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return services.groups.consumer.heartbeat(request, ctx.client_id, ctx.client_host)
