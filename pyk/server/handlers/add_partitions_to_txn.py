"""AddPartitionsToTxn: partitions join a producer's transaction before it writes to them.

v0-v3 (clients): one transactional id; a partition of an unknown topic fails with
UNKNOWN_TOPIC_OR_PARTITION and, as in Kafka, nothing is added: the other partitions answer
OPERATION_NOT_ATTEMPTED.  v4+ (KIP-890, broker to coordinator): many ids at once, each either
added or, with verify_only, checked (is the partition already in the transaction?), which is how
a group coordinator on another shard verifies a TxnOffsetCommit.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.ADD_PARTITIONS_TO_TXN
MIN_VERSION = 0
MAX_VERSION = 5


def _results(topics: list[dict[str, Any]], code: Any) -> list[dict[str, Any]]:
    return [{"name": t["name"], "results_by_partition": [
        {"partition_index": p, "partition_error_code": code(t["name"], p)} for p in t["partitions"]]}
        for t in topics]  # fmt: skip


async def _add(ctx: RequestContext, services: ShardServices, version: int, txn: dict[str, Any], transactional_id: str,
               producer_id: int, epoch: int, topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not services.authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return _results(topics, lambda t, p: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    if txn.get("verify_only"):
        return _results(topics, lambda t, p: services.txn.verify_local(transactional_id, producer_id, epoch, t, p))
    names = {t["name"] for t in topics}
    denied = names - services.authorized_names(ctx, AclOperation.WRITE, ResourceType.TOPIC, names)
    unknown = set()
    for t in topics:
        info = services.metadata.get(t["name"])
        for p in t["partitions"]:
            if info is None or not 0 <= p < info.partitions:
                unknown.add((t["name"], p))
    if unknown or denied:
        return _results(topics, lambda t, p: ErrorCode.TOPIC_AUTHORIZATION_FAILED if t in denied
                        else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if (t, p) in unknown
                        else ErrorCode.OPERATION_NOT_ATTEMPTED)
    wanted: dict[str, list[int]] = {}
    for t in topics:
        wanted.setdefault(t["name"], []).extend(t["partitions"])
    try:
        await services.txn.add_partitions(transactional_id, producer_id, epoch, wanted, version)
        code = ErrorCode.NONE
    except Exception as exc:
        code, _ = error_for(exc, f"AddPartitionsToTxn for {transactional_id!r}")
    return _results(topics, lambda t, p: code)


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    if version <= 3:
        # A client starting its next transaction waits for the previous one's markers rather
        # than being told to back off (TransactionCoordinator.await_completion).
        await services.txn.await_completion(request["v3_and_below_transactional_id"])
        results = await _add(ctx, services, version, {}, request["v3_and_below_transactional_id"],
                       request["v3_and_below_producer_id"], request["v3_and_below_producer_epoch"],
                       request["v3_and_below_topics"])
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": results}
    # v4+ comes from brokers (KIP-890's verification): CLUSTER_ACTION on the cluster.
    if not services.cluster_authorized(ctx, AclOperation.CLUSTER_ACTION):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results_by_transaction": []}
    out = []
    for txn in request["transactions"]:
        tid = txn["transactional_id"]
        out.append({"transactional_id": tid, "topic_results": await _add(
            ctx, services, version, txn, tid, txn["producer_id"], txn["producer_epoch"], txn["topics"])})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results_by_transaction": out}
