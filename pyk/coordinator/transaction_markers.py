"""Transaction markers: writing them into local partitions, and sending them to other shards.

Kafka's TransactionMarkerChannelManager role.  Once a transaction's PrepareCommit/PrepareAbort is
written, every partition of the transaction must get a control batch (a commit or abort marker)
from its leader.  A partition may live on any shard, which is a node of its own, so the
coordinator groups the partitions by leader node and sends each node one WriteTxnMarkers
request over pyk's internal client (pyk/client.py); partitions on its own node are written
directly, with the same code the WriteTxnMarkers handler runs (`write_markers` below).

Retries: a partition answered with NOT_LEADER_OR_FOLLOWER, a broken connection or any error that
may pass is retried after MARKER_RETRY_S against the leader the current metadata names, until
it succeeds: the transaction's outcome is already decided and durable, so the only way forward
is to get every marker written.  A partition whose topic was deleted needs no marker.

The same connections carry KIP-890 verification (AddPartitionsToTxn v4, verify_only) from a
group coordinator to the transaction coordinator of a TxnOffsetCommit's producer.

Owned by the broker's event loop; one MarkerSender per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pyk.client import Connection
from pyk.coordinator.offsets import OFFSETS_TOPIC
from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey

if TYPE_CHECKING:
    from pyk.coordinator.coordinator import GroupCoordinator
    from pyk.coordinator.host import CoordinatorHost
    from pyk.server.replica_manager import ReplicaManager

log = logging.getLogger("pyk.coordinator")

MARKER_RETRY_S = 0.1
CLIENT_ID = "pyk-txn-coordinator"
WRITE_TXN_MARKERS_VERSION = 1
VERIFY_VERSION = 4  # AddPartitionsToTxn's broker-side batch form, with verify_only
# A partition's entry in the WriteTxnMarkers answer and what it waits for: the group-commit
# flush (a future failing with KafkaError), or in a cluster its ISR (the code of the wait).
Flush = tuple[dict[str, Any], "asyncio.Future[None] | Awaitable[ErrorCode]"]
# Errors after which a partition needs no marker: its topic is gone.
_DONE = {ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}


def write_markers(replicas: ReplicaManager, groups: GroupCoordinator, markers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Flush]]:
    """Writes each marker into this node's partitions (the WriteTxnMarkers request's body): the
    response's `markers` list, and the group-commit flushes its partitions wait for when the
    flush policy asks for one, and in a cluster the ISR of each (Kafka appends markers with
    acks=-1 within request.timeout.ms): answer only after `markers_flushed`.  A marker in
    `__consumer_offsets` also commits or drops the producer's pending transactional offsets in
    the group coordinator."""
    now_ms = int(time.time() * 1000)
    timeout_ms = groups.host.config["request.timeout.ms"]
    results = []
    flushes: list[Flush] = []
    for marker in markers:
        pid, epoch, commit = marker["producer_id"], marker["producer_epoch"], marker["transaction_result"]
        topics = []
        for topic in marker["topics"]:
            name = topic["name"]
            parts = []
            for index in topic["partition_indexes"]:
                part = {"partition_index": index, "error_code": ErrorCode.NONE}
                try:
                    plog, _ = replicas.append_control(name, index, pid, epoch, commit,
                                                             marker["coordinator_epoch"], now_ms)
                    if name == OFFSETS_TOPIC:
                        groups.offsets.complete_txn(index, pid, commit)
                    flush = replicas.flush_waiter(plog)
                    if flush is not None:
                        flushes.append((part, flush))
                    replicated = replicas.replication(plog, timeout_ms)
                    if replicated is not None:
                        flushes.append((part, replicated))
                except KafkaError as exc:
                    part["error_code"] = exc.code
                    log.warning("marker for producer %d in %s-%d: %s", pid, name, index, exc)
                parts.append(part)
            topics.append({"name": name, "partitions": parts})
        results.append({"producer_id": pid, "topics": topics})
    return results, flushes


async def markers_flushed(results: list[dict[str, Any]], flushes: list[Flush]) -> list[dict[str, Any]]:
    """`results` once every flush and replication is done; a partition whose flush or
    replication failed reports its error, so the coordinator writes that marker again."""
    for part, waiting in flushes:
        if not isinstance(waiting, asyncio.Future):
            code = await waiting
            if code != ErrorCode.NONE and part["error_code"] == ErrorCode.NONE:
                part["error_code"] = code
            continue
        try:
            await asyncio.shield(waiting)  # shared by every write of the round: never cancel it
        except KafkaError as exc:
            part["error_code"] = exc.code
    return results


class MarkerSender:
    """Sends markers and verification requests to the nodes leading partitions (see module
    docstring).  Lifecycle: built with the coordinators' host; connections open on first use; `close()`."""

    def __init__(self, host: CoordinatorHost, groups: GroupCoordinator) -> None:
        self.host = host
        self.groups = groups  # completes transactional offsets on markers in __consumer_offsets
        self._conns: dict[int, Connection] = {}

    async def _connection(self, node_id: int) -> Connection:
        conn = self._conns.get(node_id)
        if conn is not None and not conn.closed.done():
            await self.host.inter_broker.refresh(conn)
            return conn
        node = self.host.node(node_id)
        if node is not None:
            conn = await self.host.inter_broker.connect(node["host"], node["port"], CLIENT_ID)
            self._conns[node_id] = conn
            return conn
        raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"node {node_id} is unknown")

    def _leader(self, topic: str, partition: int) -> int | None:
        """The node leading `topic`-`partition`, or None when the partition no longer exists."""
        info = self.host.topic(topic)
        if info is None or not 0 <= partition < info.partitions:
            return None
        return self.host.leader(info, partition)

    async def write(self, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int,
                    partitions: dict[str, set[int]]) -> None:
        """Returns once every partition has its marker (or no longer exists)."""
        remaining = {(t, p) for t, parts in partitions.items() for p in parts}
        while remaining:
            by_node: dict[int, dict[str, list[int]]] = {}
            for topic, index in sorted(remaining):
                node = self._leader(topic, index)
                if node is None:
                    remaining.discard((topic, index))
                    continue
                by_node.setdefault(node, {}).setdefault(topic, []).append(index)
            sends = [self._send(node, producer_id, epoch, commit, coordinator_epoch, topics)
                     for node, topics in by_node.items()]
            for done in await asyncio.gather(*sends):
                remaining -= done
            if remaining:
                await asyncio.sleep(MARKER_RETRY_S)

    async def _send(self, node_id: int, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int,
                    topics: dict[str, list[int]]) -> set[tuple[str, int]]:
        """The partitions of one node that got their marker."""
        marker = {"producer_id": producer_id, "producer_epoch": epoch, "transaction_result": commit,
                  "coordinator_epoch": coordinator_epoch,
                  "topics": [{"name": t, "partition_indexes": p} for t, p in topics.items()]}
        try:
            if node_id == self.host.node_id:
                results, flushes = write_markers(self.host.replicas, self.groups, [marker])
                if flushes:
                    results = await markers_flushed(results, flushes)
            else:
                conn = await self._connection(node_id)
                resp = await conn.request(ApiKey.WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION, {"markers": [marker]})
                results = resp["markers"]
        except (OSError, ConnectionError, KafkaError) as exc:
            log.warning("markers for producer %d to node %d failed (%s); retrying", producer_id, node_id, exc)
            return set()
        done = set()
        for result in results:
            for topic in result["topics"]:
                for part in topic["partitions"]:
                    code = part["error_code"]
                    if code in _DONE:
                        done.add((topic["name"], part["partition_index"]))
                    elif code == ErrorCode.INVALID_PRODUCER_EPOCH:
                        # The partition already saw a newer epoch of this producer: a later
                        # marker supersedes this one (Kafka stops sending it too).
                        log.warning("marker for producer %d epoch %d in %s-%d is stale; skipped", producer_id,
                                    epoch, topic["name"], part["partition_index"])
                        done.add((topic["name"], part["partition_index"]))
        return done

    async def verify(self, node_id: int, transactional_id: str, producer_id: int, epoch: int, topic: str,
                     partition: int) -> ErrorCode:
        """Asks the transaction coordinator on `node_id` whether the partition is in the transaction."""
        body = {"transactions": [{"transactional_id": transactional_id, "producer_id": producer_id,
                                  "producer_epoch": epoch, "verify_only": True,
                                  "topics": [{"name": topic, "partitions": [partition]}]}]}
        try:
            conn = await self._connection(node_id)
            resp = await conn.request(ApiKey.ADD_PARTITIONS_TO_TXN, VERIFY_VERSION, body)
        except (OSError, ConnectionError) as exc:
            log.warning("verifying %s-%d with node %d failed: %s", topic, partition, node_id, exc)
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if resp["error_code"] != ErrorCode.NONE:
            return ErrorCode(resp["error_code"])
        for txn in resp["results_by_transaction"]:
            for t in txn["topic_results"]:
                for p in t["results_by_partition"]:
                    return ErrorCode(p["partition_error_code"])
        return ErrorCode.UNKNOWN_SERVER_ERROR

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
