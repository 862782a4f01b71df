"""Produce: wire translation around ReplicaManager.append_records.

acks=0 gets no response at all; acks=1 and acks=all are answered once the batch is written to
the segment file (on a single node the leader is the whole ISR, so both mean "in the log";
min.insync.replicas above 1 cannot be met and acks=all then gets NOT_ENOUGH_REPLICAS).  The
write reaches the page cache before the answer, so a kill -9 of the broker loses nothing that
was acknowledged; fsync follows the flush policy (flush.messages / flush.ms), whose group
commit the answer then waits for.  Transactional batches are verified with their coordinator
first (KIP-890); see pyk.server.replica_manager.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.replica_manager import PartitionResponse, ProduceEntry

API_KEY = ApiKey.PRODUCE
MIN_VERSION = 0  # v0-v2 carry message formats 0/1, which the log up-converts to v2 (pyk/log/legacy.py)
MAX_VERSION = 9


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    """The response body, None for acks=0, or an awaitable of the body."""
    entries = [ProduceEntry(topic["name"], pdata["index"], pdata["records"])
               for topic in request["topic_data"] for pdata in topic["partition_data"]]
    acks = request["acks"]
    results = services.replicas.append_records(entries, acks, ctx.header.api_version, int(time.time() * 1000),
                                             request.get("transactional_id"))
    if isinstance(results, list):
        return _response(request, results) if acks != 0 else None
    return _respond_after(request, results, acks)


async def _respond_after(request: dict[str, Any], pending: Awaitable[list[PartitionResponse]],
                         acks: int) -> dict[str, Any] | None:
    """acks=0 still waits here for the verification of a transactional batch before its append
    (in request order on the connection), and then answers nothing."""
    results = await pending
    return _response(request, results) if acks != 0 else None


def _response(request: dict[str, Any], results: list[PartitionResponse]) -> dict[str, Any]:
    it = iter(results)
    responses = []
    for topic in request["topic_data"]:
        partitions = []
        for pdata in topic["partition_data"]:
            r = next(it)
            partitions.append({"index": pdata["index"], "error_code": r.error, "base_offset": r.base_offset,
                               "log_append_time_ms": r.log_append_time, "log_start_offset": r.log_start_offset,
                               "error_message": r.message})
        responses.append({"name": topic["name"], "partition_responses": partitions})
    return {"responses": responses, "throttle_time_ms": 0}
