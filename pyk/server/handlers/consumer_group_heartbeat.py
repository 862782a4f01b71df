"""ConsumerGroupHeartbeat (KIP-848): a consumer-protocol member joins, stays alive, acknowledges
revocations and learns its assignment, all in one request; the broker assigns partitions.

See pyk.coordinator.consumer_group for the epochs and the reconciliation, and
pyk.coordinator.coordinator for placement (FindCoordinator routes these groups like classic
ones), session and rebalance timeouts.
"""

from __future__ import annotations

from typing import Any

from pyk.protocol.apis import ApiKey

API_KEY = ApiKey.CONSUMER_GROUP_HEARTBEAT
MIN_VERSION = 0
MAX_VERSION = 1


def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    # client_host: the handler interface does not carry the peer address (as for JoinGroup).
    return broker.groups.consumer_group_heartbeat(request, header.client_id or "", "")
