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
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import commit_partitions, nest_partition_errors

API_KEY = ApiKey.OFFSET_COMMIT
MIN_VERSION = 0
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices,
           request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    version = ctx.header.api_version
    results = services.groups.offsets.commit_offsets(
        request["group_id"], request.get("member_id", UNKNOWN_MEMBER_ID),
        request.get("generation_id_or_member_epoch", NO_GENERATION), request.get("group_instance_id"),
        commit_partitions(request["topics"], with_timestamp=version == 1), version,
        request.get("retention_time_ms", -1) if 2 <= version <= 4 else -1)
    if isinstance(results, list):
        return _response(request, results)
    return _replicated(request, results)


async def _replicated(request: dict[str, Any], results: Awaitable[list[PartitionResult]]) -> dict[str, Any]:
    return _response(request, await results)  # a cluster: once the ISR has the offsets


def _response(request: dict[str, Any], results: list[PartitionResult]) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "topics": nest_partition_errors(request["topics"], results)}
