"""The transaction APIs on the wire, through pyk's own client: bad input gets Kafka's error code
and leaves the transaction's state as it was.

  * EndTxn / AddPartitionsToTxn from a fenced epoch: PRODUCER_FENCED (v2+), INVALID_PRODUCER_EPOCH
    before v2; an unknown producer id: INVALID_PRODUCER_ID_MAPPING;
  * AddPartitionsToTxn naming an unknown topic: UNKNOWN_TOPIC_OR_PARTITION for it and
    OPERATION_NOT_ATTEMPTED for the rest, nothing added;
  * TxnOffsetCommit for a group whose offsets were not added (no AddOffsetsToTxn): INVALID_TXN_STATE;
  * EndTxn with no open transaction: INVALID_TXN_STATE; InitProducerId with a timeout above
    transaction.max.timeout.ms: INVALID_TRANSACTION_TIMEOUT; an empty transactional id: INVALID_REQUEST;
  * ListTransactions / DescribeTransactions report the state; an unknown id: TRANSACTIONAL_ID_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyk.client import Cluster, Connection
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.helpers import create_topic

TXN = 1


class Session:
    """Connections to the coordinators of one transactional id and one group."""

    def __init__(self, cluster: Cluster, txn: Connection, group: Connection) -> None:
        self.cluster, self.txn, self.group = cluster, txn, group

    @classmethod
    async def open(cls, bootstrap: str, transactional_id: str, group_id: str) -> Session:
        cluster = await Cluster.connect(bootstrap)
        found = await cluster.conn.request(ApiKey.FIND_COORDINATOR, 4, {
            "key_type": TXN, "coordinator_keys": [transactional_id]})
        group = await cluster.conn.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": [group_id]})
        await cluster.metadata("__transaction_state")
        txn_node, group_node = found["coordinators"][0]["node_id"], group["coordinators"][0]["node_id"]
        return cls(cluster, await cluster.connection(txn_node), await cluster.connection(group_node, fresh=True))

    def close(self) -> None:
        self.group.close()
        self.cluster.close()

    async def init(self, tid: str, timeout_ms: int = 60000, version: int = 4, **extra: Any) -> dict[str, Any]:
        return await self.txn.request(ApiKey.INIT_PRODUCER_ID, version, {
            "transactional_id": tid, "transaction_timeout_ms": timeout_ms, **extra})

    async def add(self, tid: str, pid: int, epoch: int, topics: dict[str, list[int]], version: int = 3) -> dict[tuple[str, int], int]:
        resp = await self.txn.request(ApiKey.ADD_PARTITIONS_TO_TXN, version, {
            "v3_and_below_transactional_id": tid, "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": t, "partitions": p} for t, p in topics.items()]})
        return {(t["name"], p["partition_index"]): p["partition_error_code"]
                for t in resp["results_by_topic_v3_and_below"] for p in t["results_by_partition"]}

    async def end(self, tid: str, pid: int, epoch: int, commit: bool, version: int = 3) -> int:
        resp = await self.txn.request(ApiKey.END_TXN, version, {
            "transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "committed": commit})
        return int(resp["error_code"])

    async def describe(self, tid: str) -> dict[str, Any]:
        resp = await self.txn.request(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [tid]})
        return dict(resp["transaction_states"][0])


def run(bootstrap: str, tid: str, group: str, scenario: Any) -> None:
    async def main() -> None:
        session = await Session.open(bootstrap, tid, group)
        try:
            await asyncio.wait_for(scenario(session), 60)
        finally:
            session.close()

    asyncio.run(main())


def test_fenced_epoch_and_unknown_producer(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    tid = f"{topic}-tx"

    async def scenario(s: Session) -> None:
        old = await s.init(tid)
        assert old["error_code"] == ErrorCode.NONE
        pid, epoch = old["producer_id"], old["producer_epoch"]
        assert (await s.add(tid, pid, epoch, {topic: [0]})) == {(topic, 0): ErrorCode.NONE}
        # A new instance: the open transaction is aborted, the client retries until it is done.
        while (new := await s.init(tid))["error_code"] == ErrorCode.CONCURRENT_TRANSACTIONS:
            await asyncio.sleep(0.05)
        assert new["error_code"] == ErrorCode.NONE and new["producer_epoch"] == epoch + 2
        before = await s.describe(tid)
        assert await s.end(tid, pid, epoch, True, version=3) == ErrorCode.PRODUCER_FENCED
        assert await s.end(tid, pid, epoch, True, version=1) == ErrorCode.INVALID_PRODUCER_EPOCH
        assert (await s.add(tid, pid, epoch, {topic: [1]})) == {(topic, 1): ErrorCode.PRODUCER_FENCED}
        assert await s.end(tid, pid + 1000, new["producer_epoch"], True) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
        # KIP-360: the old instance asking for a bump with its stale epoch is fenced too.
        stale = await s.init(tid, producer_id=pid, producer_epoch=epoch)
        assert stale["error_code"] == ErrorCode.PRODUCER_FENCED
        assert await s.describe(tid) == before  # nothing changed
        assert before["transaction_state"] == "Empty"  # aborted, then the new epoch
        # The current instance works as if nothing happened.
        assert (await s.add(tid, pid, new["producer_epoch"], {topic: [1]})) == {(topic, 1): ErrorCode.NONE}
        assert await s.end(tid, pid, new["producer_epoch"], False) == ErrorCode.NONE

    run(broker.bootstrap, tid, f"{topic}-g", scenario)


def test_unknown_topic_adds_nothing(broker, topic):
    create_topic(broker.bootstrap, topic, 2)
    tid = f"{topic}-tx"

    async def scenario(s: Session) -> None:
        r = await s.init(tid)
        pid, epoch = r["producer_id"], r["producer_epoch"]
        got = await s.add(tid, pid, epoch, {topic: [0, 1], "no-such-topic": [0]})
        assert got == {(topic, 0): ErrorCode.OPERATION_NOT_ATTEMPTED, (topic, 1): ErrorCode.OPERATION_NOT_ATTEMPTED,
                       ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        assert (await s.add(tid, pid, epoch, {topic: [7]})) == {(topic, 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        state = await s.describe(tid)
        assert (state["transaction_state"], state["topics"]) == ("Empty", [])
        assert await s.end(tid, pid, epoch, True) == ErrorCode.INVALID_TXN_STATE  # nothing to end

    run(broker.bootstrap, tid, f"{topic}-g", scenario)


def test_txn_offset_commit_needs_add_offsets(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    tid, group = f"{topic}-tx", f"{topic}-g"

    async def scenario(s: Session) -> None:
        r = await s.init(tid)
        pid, epoch = r["producer_id"], r["producer_epoch"]
        assert (await s.add(tid, pid, epoch, {topic: [0]})) == {(topic, 0): ErrorCode.NONE}
        commit = {"transactional_id": tid, "group_id": group, "producer_id": pid, "producer_epoch": epoch,
                  "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 5,
                                                             "committed_metadata": None}]}]}
        resp = await s.group.request(ApiKey.TXN_OFFSET_COMMIT, 3, commit)
        assert resp["topics"][0]["partitions"][0]["error_code"] == ErrorCode.INVALID_TXN_STATE
        fetch = {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": True}
        got = await s.group.request(ApiKey.OFFSET_FETCH, 7, fetch)
        assert got["topics"][0]["partitions"][0]["committed_offset"] == -1  # nothing was written
        # After AddOffsetsToTxn the same commit is accepted, and pending until the marker.
        added = await s.txn.request(ApiKey.ADD_OFFSETS_TO_TXN, 3, {
            "transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": group})
        assert added["error_code"] == ErrorCode.NONE
        resp = await s.group.request(ApiKey.TXN_OFFSET_COMMIT, 3, commit)
        assert resp["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
        got = await s.group.request(ApiKey.OFFSET_FETCH, 7, fetch)
        assert got["topics"][0]["partitions"][0]["error_code"] == ErrorCode.UNSTABLE_OFFSET_COMMIT
        fenced = dict(commit, producer_epoch=epoch - 1)
        resp = await s.group.request(ApiKey.TXN_OFFSET_COMMIT, 3, fenced)
        assert resp["topics"][0]["partitions"][0]["error_code"] == ErrorCode.PRODUCER_FENCED
        assert await s.end(tid, pid, epoch, True) == ErrorCode.NONE
        for _ in range(100):
            got = await s.group.request(ApiKey.OFFSET_FETCH, 7, fetch)
            if got["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE:
                break
            await asyncio.sleep(0.05)
        assert got["topics"][0]["partitions"][0]["committed_offset"] == 5

    run(broker.bootstrap, tid, group, scenario)


def test_bad_init_and_listing(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    tid = f"{topic}-tx"

    async def scenario(s: Session) -> None:
        assert (await s.init(tid, timeout_ms=900_001))["error_code"] == ErrorCode.INVALID_TRANSACTION_TIMEOUT
        assert (await s.init(tid, timeout_ms=0))["error_code"] == ErrorCode.INVALID_TRANSACTION_TIMEOUT
        assert (await s.init(""))["error_code"] == ErrorCode.INVALID_REQUEST
        assert (await s.describe(tid))["error_code"] == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
        r = await s.init(tid)
        pid, epoch = r["producer_id"], r["producer_epoch"]
        await s.add(tid, pid, epoch, {topic: [0]})
        listed = await s.txn.request(ApiKey.LIST_TRANSACTIONS, 1, {
            "state_filters": ["Ongoing", "Bogus"], "producer_id_filters": [pid], "duration_filter": -1})
        assert listed["unknown_state_filters"] == ["Bogus"]
        assert listed["transaction_states"] == [{"transactional_id": tid, "producer_id": pid,
                                                 "transaction_state": "Ongoing"}]
        state = await s.describe(tid)
        assert (state["transaction_state"], state["producer_epoch"], state["transaction_timeout_ms"]) == (
            "Ongoing", epoch, 60000)
        assert state["topics"] == [{"topic": topic, "partitions": [0]}]
        assert await s.end(tid, pid, epoch, False) == ErrorCode.NONE

    run(broker.bootstrap, tid, f"{topic}-g", scenario)


def test_produce_to_a_partition_not_in_the_transaction_is_refused(broker, topic):
    """KIP-890 part 1: the first transactional batch in a partition is verified with the
    coordinator (on whichever shard); without AddPartitionsToTxn it gets INVALID_TXN_STATE and
    nothing is written, so no transaction can hang the partition's LSO."""
    from tests.adversity.wire import record_batch

    create_topic(broker.bootstrap, topic, 2)
    tid = f"{topic}-tx"

    async def produce(s: Session, partition: int, pid: int, epoch: int, seq: int) -> dict[str, Any]:
        batch = record_batch([(None, b"v")], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                             transactional=True)
        leader = (await s.cluster.metadata(topic))[partition].leader
        conn = await s.cluster.connection(leader)
        resp = await conn.request(ApiKey.PRODUCE, 8, {"transactional_id": tid, "acks": -1, "timeout_ms": 5000,
                                                      "topic_data": [{"name": topic, "partition_data": [
                                                          {"index": partition, "records": batch}]}]})
        return dict(resp["responses"][0]["partition_responses"][0])

    async def scenario(s: Session) -> None:
        r = await s.init(tid)
        pid, epoch = r["producer_id"], r["producer_epoch"]
        assert (await s.add(tid, pid, epoch, {topic: [0]})) == {(topic, 0): ErrorCode.NONE}
        refused = await produce(s, 1, pid, epoch, 0)
        assert refused["error_code"] == ErrorCode.INVALID_TXN_STATE
        assert (await produce(s, 0, pid, epoch, 0))["error_code"] == ErrorCode.NONE
        assert (await produce(s, 0, pid, epoch, 1))["error_code"] == ErrorCode.NONE  # open: no round trip
        assert (await produce(s, 0, pid, epoch - 1, 2))["error_code"] == ErrorCode.INVALID_PRODUCER_EPOCH
        assert await s.end(tid, pid, epoch, False) == ErrorCode.NONE
        # EndTxn answers once PrepareAbort is durable; the marker follows (Kafka's order).
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            offsets = await s.cluster.list_offsets(topic, await s.cluster.metadata(topic), -1)
            if offsets[0] >= 3 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert offsets == {0: 3, 1: 0}  # partition 1 got nothing: two records and the abort marker in 0

    run(broker.bootstrap, tid, f"{topic}-g", scenario)


def test_describe_producers(broker, topic):
    """DescribeProducers (Admin.describeProducers, kafka-transactions describe-producers): the
    partition's leader reports its producers with the open transaction's first offset; another
    node answers NOT_LEADER_OR_FOLLOWER, and an unknown topic UNKNOWN_TOPIC_OR_PARTITION."""
    from tests.adversity.wire import record_batch

    create_topic(broker.bootstrap, topic, 2)
    tid = f"{topic}-tx"

    async def scenario(s: Session) -> None:
        r = await s.init(tid)
        pid, epoch = r["producer_id"], r["producer_epoch"]
        assert (await s.add(tid, pid, epoch, {topic: [0]})) == {(topic, 0): ErrorCode.NONE}
        leaders = {p.partition: p.leader for p in await s.cluster.metadata(topic)}
        conn = await s.cluster.connection(leaders[0])
        batch = record_batch([(None, b"a"), (None, b"b")], producer_id=pid, producer_epoch=epoch, base_sequence=0,
                             transactional=True)
        produced = await conn.request(ApiKey.PRODUCE, 8, {"transactional_id": tid, "acks": -1, "timeout_ms": 5000,
                                                          "topic_data": [{"name": topic, "partition_data": [
                                                              {"index": 0, "records": batch}]}]})
        assert produced["responses"][0]["partition_responses"][0]["error_code"] == ErrorCode.NONE
        resp = await conn.request(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [
            {"name": topic, "partition_indexes": [0, 1]}, {"name": f"{topic}-none", "partition_indexes": [0]}]})
        [mine, unknown] = resp["topics"]
        [p0, p1] = mine["partitions"]
        assert p0["error_code"] == ErrorCode.NONE
        assert [{k: v for k, v in p.items() if k != "last_timestamp"} for p in p0["active_producers"]] == [
            {"producer_id": pid, "producer_epoch": epoch, "last_sequence": 1, "coordinator_epoch": -1,
             "current_txn_start_offset": 0}]
        assert p0["active_producers"][0]["last_timestamp"] > 0
        expected = ErrorCode.NONE if leaders[1] == leaders[0] else ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert (p1["error_code"], p1["active_producers"]) == (expected, [])
        assert unknown["partitions"][0]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert await s.end(tid, pid, epoch, False) == ErrorCode.NONE

    run(broker.bootstrap, tid, f"{topic}-g", scenario)
