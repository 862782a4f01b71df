"""Fetch: wire translation around ReplicaManager.read and its long-poll wait.

Records are never read into Python: each partition's answer carries a `FileSlice` of its segment
that the connection sends with sendfile (or splice).  Byte limits (KIP-74) and isolation (KIP-98:
read_committed stops at the last stable offset and lists the aborted transactions overlapping
the bytes returned) are the ReplicaManager's.

Fetch sessions (KIP-227): pyk answers every request in full and never creates a session
(session_id 0 in the response), which the protocol allows ("the server may decline to create a
session"); clients then keep sending full requests.  An incremental request for a session id we
never issued gets FETCH_SESSION_ID_NOT_FOUND, so the client falls back to a full one.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.replica_manager import FetchParams, FetchPartition, FetchResult

API_KEY = ApiKey.FETCH
MIN_VERSION = 4  # v4 is the first to carry magic v2 record batches and isolation levels
MAX_VERSION = 12


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    session_id = request.get("session_id", 0)
    epoch = request.get("session_epoch", -1)
    if session_id != 0 or epoch > 0:
        code = ErrorCode.FETCH_SESSION_ID_NOT_FOUND if session_id != 0 else ErrorCode.INVALID_FETCH_SESSION_EPOCH
        return {"throttle_time_ms": 0, "error_code": code, "session_id": 0, "responses": []}
    params = FetchParams(max_bytes=min(request.get("max_bytes", 0x7FFFFFFF), services.config["fetch.max.bytes"]),
                         min_bytes=request["min_bytes"], max_wait_ms=request["max_wait_ms"],
                         isolation_level=request.get("isolation_level", 0), replica_id=request.get("replica_id", -1))
    partitions = [FetchPartition(topic["topic"], part["partition"], part["fetch_offset"], part["partition_max_bytes"],
                                 part.get("current_leader_epoch", -1))
                  for topic in request["topics"] for part in topic["partitions"]]
    result = services.replicas.read(params, partitions, params.max_bytes)
    if (result.bytes_read >= params.min_bytes or params.max_wait_ms <= 0 or result.any_error
            or not partitions):
        return _response(request, result)
    return _long_poll(services, request, params, partitions, params.min_bytes - result.bytes_read)


async def _long_poll(services: ShardServices, request: dict[str, Any], params: FetchParams, partitions: list[FetchPartition],
                     needed: int) -> dict[str, Any]:
    await services.replicas.wait_for_data(params, [(p.topic, p.partition) for p in partitions], needed)
    return _response(request, services.replicas.read(params, partitions, params.max_bytes))


def _response(request: dict[str, Any], result: FetchResult) -> dict[str, Any]:
    it = iter(result.partitions)
    responses = []
    for topic in request["topics"]:
        parts = []
        for part in topic["partitions"]:
            data = next(it)
            aborted = data.aborted_transactions
            parts.append({
                "partition_index": part["partition"],
                "error_code": data.error,
                "high_watermark": data.high_watermark,
                "last_stable_offset": data.last_stable_offset,
                "log_start_offset": data.log_start_offset,
                "aborted_transactions": None if aborted is None else
                [{"producer_id": pid, "first_offset": first} for pid, first in aborted],
                "preferred_read_replica": -1,
                # Empty, not null: Kafka always sends a record set, and librdkafka 2.0.2
                # rejects a null one ("invalid MessageSetSize -1").
                "records": data.records if data.records is not None else b"",
            })
        responses.append({"topic": topic["topic"], "partitions": parts})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}
