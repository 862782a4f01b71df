"""Fetch: wire translation around ReplicaManager.read and its long-poll wait.

Records are never read into Python: each partition's answer carries a `FileSlice` of its segment
that the connection sends with sendfile (or splice).  Byte limits (KIP-74) and isolation (KIP-98:
read_committed stops at the last stable offset and lists the aborted transactions overlapping
the bytes returned) are the ReplicaManager's.

Fetch sessions (KIP-227): pyk answers every request in full and never creates a session
(session_id 0 in the response), which the protocol allows ("the server may decline to create a
session"); clients then keep sending full requests.  An incremental request for a session id we
never issued gets FETCH_SESSION_ID_NOT_FOUND, so the client falls back to a full one.

With an authorizer (Kafka's handleFetchRequest): a follower's fetch needs CLUSTER_ACTION on the
cluster, a consumer's READ on each topic; a denied partition answers TOPIC_AUTHORIZATION_FAILED
and is left out of the read and the long poll.  Without one nothing is checked.

Quotas (pyk.server.quotas): a consumer's fetched bytes count against its consumer_byte_rate; a
Fetch that takes it over, or that its request quota throttles, is answered empty with the
throttle time and its bytes are taken back (Kafka's KafkaApis.handleFetchRequest), and the
connection then mutes; a quota'd Fetch asks for no more than its quota lets through in one
window.  Followers are exempt.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from pyk._native import encode_fetch_response, scan_fetch_request
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.purgatory import PartitionKey
from pyk.server.quotas import QuotaType
from pyk.server.replica_manager import FetchParams, FetchPartition, FetchPartitionData, FetchResult
from pyk.server.security.authorizer import CLUSTER_NAME, AclOperation, Authorizer, ResourceType

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
    max_bytes = min(request.get("max_bytes", 0x7FFFFFFF), services.config["fetch.max.bytes"])
    replica_id = request.get("replica_id", -1)
    if services.quotas.active and replica_id < 0:
        window = services.quotas.max_value_in_window(QuotaType.FETCH, ctx.principal, ctx.client_id,
                                                     int(time.time() * 1000))
        if window is not None:
            max_bytes = min(max_bytes, int(window))
    params = FetchParams(max_bytes=max_bytes,
                         min_bytes=request["min_bytes"], max_wait_ms=request["max_wait_ms"],
                         isolation_level=request.get("isolation_level", 0), replica_id=replica_id,
                         rack_id=request.get("rack_id") if ctx.header.api_version >= 11 else None)
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
    authorizer = services.authorizer
    denied = None if authorizer is None else _denied(ctx, authorizer, params, partitions)
    if denied:
        partitions = [p for i, p in enumerate(partitions) if i not in denied]
    result = services.replicas.read(params, partitions)
    if (result.bytes_read >= params.min_bytes or params.max_wait_ms <= 0 or result.any_error or result.redirected
            or not partitions):
        return _response(ctx, services, layout, result, params.replica_id, denied)
    # Parked here, in the read's own callback: the coroutine below first runs a loop turn later.
    changed: set[PartitionKey] = set()
    parked = services.replicas.wait_for_data(params, [(p.topic, p.partition) for p in partitions],
                                             params.min_bytes - result.bytes_read, changed)
    return _long_poll(ctx, services, layout, params, partitions, result, parked, changed, denied)


def _denied(ctx: RequestContext, authorizer: Authorizer, params: FetchParams,
            partitions: list[FetchPartition]) -> dict[int, FetchPartitionData] | None:
    """The partitions (by request index) the principal may not fetch, with their answer.  The
    decisions are the authorizer's cached ones: a dict lookup per topic of the request."""
    authorize, principal, host = authorizer.authorize, ctx.principal, ctx.client_address
    if params.replica_id >= 0:
        if authorize(principal, host, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
            return None
        return {i: FetchPartitionData(ErrorCode.TOPIC_AUTHORIZATION_FAILED) for i in range(len(partitions))}
    denied = {t for t in {p.topic for p in partitions}
              if not authorize(principal, host, AclOperation.READ, ResourceType.TOPIC, t)}
    if not denied:
        return None
    return {i: FetchPartitionData(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
            for i, p in enumerate(partitions) if p.topic in denied}


async def _long_poll(ctx: RequestContext, services: ShardServices, layout: _Layout, params: FetchParams,
                     partitions: list[FetchPartition], first: FetchResult, parked: Awaitable[bool],
                     changed: set[PartitionKey], denied: dict[int, FetchPartitionData] | None) -> list[Any]:
    """Waits until enough bytes arrive or max_wait_ms is up, then re-reads the partitions that
    changed meanwhile (the others keep the first pass's answer).  A connection closed meanwhile
    gets nothing read: a stopping shard closes its connections, then its logs, and the wait may
    end in between (seen under the live fuzzer)."""
    await parked
    if ctx.connection.closed:
        return []
    return _response(ctx, services, layout, services.replicas.read(params, partitions, first, changed),
                     params.replica_id, denied)


def _response(ctx: RequestContext, services: ShardServices, layout: _Layout, result: FetchResult,
              replica_id: int, denied: dict[int, FetchPartitionData] | None) -> list[Any]:
    """The response frame, written in Cython around the records' file slices (parity-tested
    against pyk.protocol); no session (session_id 0).  The denied partitions' answers go back in
    their request positions."""
    header, quotas = ctx.header, services.quotas
    if quotas.active and replica_id < 0:
        now_ms = int(time.time() * 1000)
        throttle = quotas.record(QuotaType.FETCH, ctx.principal, ctx.client_id, result.bytes_read, now_ms)
        if throttle or ctx.throttle_time_ms:  # over either quota (the request quota's was set by the dispatcher)
            quotas.unrecord(QuotaType.FETCH, ctx.principal, ctx.client_id, result.bytes_read, now_ms)
            ctx.throttle_time_ms = max(ctx.throttle_time_ms, throttle)
            return encode_fetch_response(header.api_version, header.correlation_id, ctx.throttle_time_ms,
                                         ErrorCode.NONE, 0, [], [], [], [])
    answers = result.partitions
    if denied:
        read = iter(answers)
        answers = [denied[i] if i in denied else next(read) for i in range(len(layout.indexes))]
    return encode_fetch_response(header.api_version, header.correlation_id, ctx.throttle_time_ms, ErrorCode.NONE, 0,
                                 layout.names, layout.counts, layout.indexes, answers)
