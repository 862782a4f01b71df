"""OffsetDelete (KIP-496): removes a group's committed offsets for some partitions.

Allowed for an empty group, and for an active consumer group on topics it does not subscribe
to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import nest_partition_errors, topic_partitions, with_denied
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.OFFSET_DELETE
MIN_VERSION = 0
MAX_VERSION = 0


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    wanted = request["topics"]
    # DELETE on the group (else GROUP_AUTHORIZATION_FAILED), READ on each topic (Kafka's rule).
    if not services.authorized(ctx, AclOperation.DELETE, ResourceType.GROUP, request["group_id"]):
        return {"error_code": ErrorCode.GROUP_AUTHORIZATION_FAILED, "throttle_time_ms": 0, "topics": []}
    names = {t["name"] for t in wanted}
    denied = dict.fromkeys(names - services.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, names),
                           ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    allowed = [t for t in wanted if t["name"] not in denied]
    code, results = services.groups.offsets.delete_offsets(request["group_id"], topic_partitions(allowed))
    topics = nest_partition_errors(wanted, with_denied(wanted, denied, results)) if code == ErrorCode.NONE else []
    return {"error_code": code, "throttle_time_ms": 0, "topics": topics}
