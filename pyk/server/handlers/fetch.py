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

from pyk._native import encode_fetch_response, scan_fetch_request
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.protocol.header import RequestHeader
from pyk.server.context import RequestContext, ShardServices
from pyk.server.purgatory import PartitionKey
from pyk.server.replica_manager import FetchParams, FetchPartition, FetchResult

API_KEY = ApiKey.FETCH
MIN_VERSION = 4  # v4 is the first to carry magic v2 record batches and isolation levels
MAX_VERSION = 12


def decode_request(frame: memoryview, offset: int, version: int) -> dict[str, Any]:
    """The request body scanned in Cython (ext/wire.pyx): the declarative decoder's dict,
    field for field, without its generated Python per field; raises ProtocolViolation as it does."""
    return scan_fetch_request(frame, offset, version)


class _Layout:
    """The request's topics as the response repeats them: names, partitions per topic entry,
    partition indexes, in request order."""

    __slots__ = ("names", "counts", "indexes")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.counts: list[int] = []
        self.indexes: list[int] = []


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    session_id = request.get("session_id", 0)
    epoch = request.get("session_epoch", -1)
    if session_id != 0 or epoch > 0:
        code = ErrorCode.FETCH_SESSION_ID_NOT_FOUND if session_id != 0 else ErrorCode.INVALID_FETCH_SESSION_EPOCH
        return {"throttle_time_ms": 0, "error_code": code, "session_id": 0, "responses": []}
    params = FetchParams(max_bytes=min(request.get("max_bytes", 0x7FFFFFFF), services.config["fetch.max.bytes"]),
                         min_bytes=request["min_bytes"], max_wait_ms=request["max_wait_ms"],
                         isolation_level=request.get("isolation_level", 0), replica_id=request.get("replica_id", -1))
    layout = _Layout()
    partitions = []
    for topic in request["topics"]:
        name = topic["topic"]
        layout.names.append(name)
        layout.counts.append(len(topic["partitions"]))
        for part in topic["partitions"]:
            layout.indexes.append(part["partition"])
            partitions.append(FetchPartition(name, part["partition"], part["fetch_offset"],
                                             part["partition_max_bytes"], part.get("current_leader_epoch", -1)))
    result = services.replicas.read(params, partitions)
    if (result.bytes_read >= params.min_bytes or params.max_wait_ms <= 0 or result.any_error
            or not partitions):
        return _response(ctx.header, layout, result)
    return _long_poll(ctx.header, services, layout, params, partitions, result)


async def _long_poll(header: RequestHeader, services: ShardServices, layout: _Layout, params: FetchParams,
                     partitions: list[FetchPartition], first: FetchResult) -> list[Any]:
    """Parks until enough bytes arrive or max_wait_ms is up, then re-reads the partitions that
    changed meanwhile (the others keep the first pass's answer)."""
    changed: set[PartitionKey] = set()
    await services.replicas.wait_for_data(params, [(p.topic, p.partition) for p in partitions],
                                          params.min_bytes - first.bytes_read, changed)
    return _response(header, layout, services.replicas.read(params, partitions, first, changed))


def _response(header: RequestHeader, layout: _Layout, result: FetchResult) -> list[Any]:
    """The response frame, written in Cython around the records' file slices (parity-tested
    against pyk.protocol); no session (session_id 0), preferred read replica -1."""
    return encode_fetch_response(header.api_version, header.correlation_id, 0, ErrorCode.NONE, 0, layout.names,
                                 layout.counts, layout.indexes, result.partitions)
