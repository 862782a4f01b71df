"""OffsetCommit: a group's consumers store their positions in `__consumer_offsets`.

Commits are fenced by the member id and generation (v1+) and by group.instance.id (v7+); v0 and
commits without a generation come from consumers that use the group only to store offsets.
v9 is v8 and the first version a consumer-protocol (KIP-848) member may commit with: its member
epoch goes in the generation field.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pyk.coordinator.api import PartitionResult
from pyk.coordinator.group import NO_GENERATION, UNKNOWN_MEMBER_ID
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import commit_partitions, nest_partition_errors, with_denied
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    version = ctx.header.api_version
    topics = request["topics"]
    denied = denied_topics(ctx, services, request["group_id"], topics)
    allowed = [t for t in topics if t["name"] not in denied]
    results = services.groups.offsets.commit_offsets(
        request["group_id"], request.get("member_id", UNKNOWN_MEMBER_ID),
        request.get("generation_id_or_member_epoch", NO_GENERATION), request.get("group_instance_id"),
        commit_partitions(allowed, with_timestamp=version == 1), version,
        request.get("retention_time_ms", -1) if 2 <= version <= 4 else -1) if allowed else []
    if isinstance(results, list):
        return _response(topics, denied, results)
    return _replicated(topics, denied, results)


async def _replicated(topics: list[dict[str, Any]], denied: dict[str, ErrorCode],
                      results: Awaitable[list[PartitionResult]]) -> dict[str, Any]:
    return _response(topics, denied, await results)  # a cluster: once the ISR has the offsets


def _response(topics: list[dict[str, Any]], denied: dict[str, ErrorCode],
              results: list[PartitionResult]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "topics": nest_partition_errors(topics, with_denied(topics, denied, results))}


def denied_topics(ctx: RequestContext, services: ShardServices, group_id: str,
                  topics: list[dict[str, Any]]) -> dict[str, ErrorCode]:
    """The topics whose offsets the principal may not commit, with their error: every one
    without READ on the group, else those without READ on the topic (Kafka's rule)."""
    names = {t["name"] for t in topics}
    if not services.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return dict.fromkeys(names, ErrorCode.GROUP_AUTHORIZATION_FAILED)
    readable = services.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, names)
    return dict.fromkeys(names - readable, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
