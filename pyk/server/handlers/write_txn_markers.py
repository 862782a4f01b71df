"""WriteTxnMarkers: a transaction coordinator asks this node to end a transaction in its partitions.

Sent by the coordinator of the transaction, which may be another shard (inter-broker; Kafka's
clients never send it).  Each partition gets a commit or abort control batch
(PartitionLog.append_control, which fences a stale producer epoch); a marker in
`__consumer_offsets` also makes the producer's pending TxnOffsetCommit offsets committed or
drops them.  Per-partition errors let the coordinator retry exactly the partitions that failed.
Under a flush policy (flush.messages) the answer waits for the group commit that syncs the
markers, as a produce's does, and in a cluster for each partition's ISR (Kafka appends markers
with acks=-1), so a marker the coordinator counts as written is as durable as the data.
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.transaction_markers import markers_flushed, write_markers
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.WRITE_TXN_MARKERS
MIN_VERSION = 0
MAX_VERSION = 1


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    """The body, or an awaitable of it when a flush (flush.messages) must finish first.  A broker
    sends it (CLUSTER_ACTION on the cluster), or an admin aborting a hanging transaction (KIP-664:
    ALTER on the cluster, asked first and not audited, as Kafka does); else every partition is refused."""
    if not (services.cluster_authorized(ctx, AclOperation.ALTER, audit=False)
            or services.cluster_authorized(ctx, AclOperation.CLUSTER_ACTION)):
        return {"markers": [{"producer_id": m["producer_id"], "topics": [
            {"name": t["name"], "partitions": [{"partition_index": p, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED}
                                               for p in t["partition_indexes"]]} for t in m["topics"]]}
            for m in request["markers"]]}
    results, flushes = write_markers(services.replicas, services.groups, request["markers"])
    if not flushes:
        return {"markers": results}
    return _after_flush(results, flushes)


async def _after_flush(results: list[dict[str, Any]], flushes: list[Any]) -> dict[str, Any]:
    return {"markers": await markers_flushed(results, flushes)}
