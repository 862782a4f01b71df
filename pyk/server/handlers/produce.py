"""Produce: wire translation around ReplicaManager.append_records.

acks=0 gets no response at all; acks=1 and acks=all are answered once the batch is written to
the segment file (on a single node the leader is the whole ISR, so both mean "in the log";
min.insync.replicas above 1 cannot be met and acks=all then gets NOT_ENOUGH_REPLICAS).  In a
cluster acks=all waits, up to the request's timeout, until the ISR has the records.  The
write reaches the page cache before the answer, so a kill -9 of the broker loses nothing that
was acknowledged; fsync follows the flush policy (flush.messages / flush.ms), whose group
commit the answer then waits for.  Transactional batches are verified with their coordinator
first (KIP-890); see pyk.server.replica_manager.

With an authorizer (Kafka's handleProduceRequest): a transactional request needs WRITE on its
transactional id (else every partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and each
partition WRITE on its topic (else TOPIC_AUTHORIZATION_FAILED); without one nothing is checked.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from pyk._native import ProduceRequestScan, encode_produce_response, scan_produce_request
from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.replica_manager import PartitionResponse
from pyk.server.security.authorizer import AclOperation, Authorizer, ResourceType

API_KEY = ApiKey.PRODUCE
MIN_VERSION = 0  # v0-v2 carry message formats 0/1, which the log up-converts to v2 (pyk/log/legacy.py)
MAX_VERSION = 9


def decode_request(frame: memoryview, offset: int, version: int) -> ProduceRequestScan:
    """The request body scanned in Cython (ext/wire.pyx) instead of the generic decoder: no
    dict per topic or partition, the record batches zero-copy views of the frame.  Raises
    ProtocolViolation as the generic decoder does."""
    return scan_produce_request(frame, offset, version)


def handle(ctx: RequestContext, services: ShardServices, request: ProduceRequestScan
           ) -> list[bytes] | None | Awaitable[list[bytes] | None]:
    """The encoded response, None for acks=0, or an awaitable of either."""
    header = ctx.header
    authorizer = services.authorizer
    refused = None if authorizer is None else _denied(ctx, authorizer, request)
    results = services.replicas.append_records(request, request.acks, header.api_version, int(time.time() * 1000),
                                               request.transactional_id, request.timeout_ms, refused)
    if isinstance(results, list):
        return _response(ctx, request, results) if request.acks != 0 else None
    return _respond_after(ctx, request, results)


def _denied(ctx: RequestContext, authorizer: Authorizer, request: ProduceRequestScan) -> dict[int, KafkaError] | None:
    """The partitions (by index) the principal may not write, with their error.  The decisions
    are the authorizer's cached ones: a dict lookup per topic entry of the request."""
    authorize, principal, host = authorizer.authorize, ctx.principal, ctx.client_address
    txn_id = request.transactional_id
    if txn_id is not None and not authorize(principal, host, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, txn_id):
        error = KafkaError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, f"{principal} may not write {txn_id}")
        return dict.fromkeys(range(len(request.topics)), error)
    denied = [t for t in request.topic_names if not authorize(principal, host, AclOperation.WRITE, ResourceType.TOPIC, t)]
    if not denied:
        return None
    return {i: KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, f"{principal} may not write {topic}")
            for i, topic in enumerate(request.topics) if topic in denied}


async def _respond_after(ctx: RequestContext, request: ProduceRequestScan,
                         pending: Awaitable[list[PartitionResponse]]) -> list[bytes] | None:
    """acks=0 still waits here for the verification of a transactional batch before its append
    (in request order on the connection), and then answers nothing."""
    results = await pending
    return _response(ctx, request, results) if request.acks != 0 else None


def _response(ctx: RequestContext, request: ProduceRequestScan, results: list[PartitionResponse]) -> list[bytes]:
    """The whole response frame, written in Cython (parity-tested against pyk.protocol), with the
    throttle time of the client's quotas (pyk.server.quotas, recorded by the dispatcher)."""
    header = ctx.header
    return [encode_produce_response(header.api_version, header.correlation_id, request.topic_names,
                                    request.topic_counts, request.partitions, results, ctx.throttle_time_ms)]
