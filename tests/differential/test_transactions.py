"""Transactions, pyk against Apache Kafka: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
EndTxn in right and wrong states, DescribeTransactions and ListTransactions.

Requests are those of a transaction.version 1 client (EndTxn v4, AddPartitionsToTxn v3), which
both brokers serve.  Producer ids are the brokers' own (placeholders); epochs are compared.
"""

from __future__ import annotations

import time
from typing import Any

from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import TIMEOUT_S, Peer
from tests.differential.test_data import batch, produce

TXN = 1  # FindCoordinator key type


def init(p: Peer, txn_id: str | None, timeout_ms: int = 60000, pid: int = -1, epoch: int = -1) -> dict[str, Any]:
    body = {"transactional_id": txn_id, "transaction_timeout_ms": timeout_ms, "producer_id": pid,
            "producer_epoch": epoch}  # fmt: skip
    node = None if not txn_id else p.coordinator(txn_id, TXN)
    return p.call(ApiKey.INIT_PRODUCER_ID, 4, body, node)


def add_partitions(p: Peer, txn_id: str, pid: int, epoch: int, topics: dict[str, list[int]]) -> dict[str, Any]:
    body = {"v3_and_below_transactional_id": txn_id, "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": t, "partitions": ps} for t, ps in topics.items()]}  # fmt: skip
    resp = p.call(ApiKey.ADD_PARTITIONS_TO_TXN, 3, body, p.coordinator(txn_id, TXN))
    resp["results_by_topic_v3_and_below"].sort(key=lambda t: t["name"])
    for t in resp["results_by_topic_v3_and_below"]:
        t["results_by_partition"].sort(key=lambda r: r["partition_index"])
    return resp


def end(p: Peer, txn_id: str, pid: int, epoch: int, commit: bool) -> dict[str, Any]:
    body = {"transactional_id": txn_id, "producer_id": pid, "producer_epoch": epoch, "committed": commit}
    return p.call(ApiKey.END_TXN, 4, body, p.coordinator(txn_id, TXN))


def describe(p: Peer, *txn_ids: str) -> dict[str, Any]:
    resp = p.call(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": list(txn_ids)},
                  p.coordinator(txn_ids[0], TXN))
    for state in resp["transaction_states"]:
        state["topics"].sort(key=lambda t: t["topic"])
        for t in state["topics"]:
            t["partitions"].sort()
    return resp


def settled(p: Peer, txn_id: str) -> dict[str, Any]:
    """DescribeTransactions once the markers are written (PrepareCommit/PrepareAbort are transient)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        resp = describe(p, txn_id)
        if not resp["transaction_states"][0]["transaction_state"].startswith("Prepare"):
            return resp
        assert time.monotonic() < deadline, f"{p.name}: {txn_id} stuck in {resp}"
        time.sleep(0.02)


def begin(p: Peer, txn_id: str) -> tuple[int, int]:
    """InitProducerId for `txn_id`, retried while Kafka loads its transaction log."""
    body = {"transactional_id": txn_id, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
    resp = p.until_ok(ApiKey.INIT_PRODUCER_ID, 4, body, lambda r: r["error_code"], p.coordinator(txn_id, TXN))
    return resp["producer_id"], resp["producer_epoch"]


DROP = {"transaction_start_time_ms"}


def test_init_producer_id_cases(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        out = {
            "idempotent": init(p, None),
            "first": init(p, topic),
            "again_bumps_epoch": init(p, topic),
            "timeout_too_large": init(p, f"{topic}-big", timeout_ms=10**9),
            "timeout_zero": init(p, f"{topic}-zero", timeout_ms=0),
            "empty_txn_id": init(p, "", timeout_ms=60000),
            "wrong_producer_id": init(p, topic, pid=123456789, epoch=1),
        }
        # KIP-360: the producer names its current id and epoch to have the epoch bumped.
        current = out["again_bumps_epoch"]
        out["bump_current"] = init(p, topic, pid=current["producer_id"], epoch=current["producer_epoch"])
        out["bump_stale"] = init(p, topic, pid=current["producer_id"], epoch=current["producer_epoch"])
        return out

    pair.same(scenario)


def test_end_txn_in_wrong_states(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        pid, epoch = begin(p, topic)
        out: dict[str, Any] = {"commit_empty": end(p, topic, pid, epoch, True),
                               "abort_empty": end(p, topic, pid, epoch, False)}
        out["after_empty"] = describe(p, topic)
        out["unknown_txn"] = end(p, f"{topic}-none", pid, epoch, True)
        out["wrong_pid"] = end(p, topic, pid + 1, epoch, True)
        out["old_epoch"] = end(p, topic, pid, epoch - 1 if epoch > 0 else 5, True)
        return out

    pair.same(scenario, drop=DROP)


def test_transaction_state_transitions(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic, partitions=2)
        pid, epoch = begin(p, topic)
        out: dict[str, Any] = {"empty": describe(p, topic)}
        out["add"] = add_partitions(p, topic, pid, epoch, {topic: [0, 1]})
        out["ongoing"] = describe(p, topic)
        out["add_again"] = add_partitions(p, topic, pid, epoch, {topic: [1]})
        out["produce"] = produce(p, topic, batch(b"t", pid=pid, epoch=epoch, seq=0), transactional_id=topic)
        out["commit"] = end(p, topic, pid, epoch, True)
        out["committed"] = settled(p, topic)
        out["commit_again"] = end(p, topic, pid, epoch, True)
        out["abort_after_commit"] = end(p, topic, pid, epoch, False)
        add_partitions(p, topic, pid, epoch, {topic: [0]})
        out["abort"] = end(p, topic, pid, epoch, False)
        out["aborted"] = settled(p, topic)
        out["commit_after_abort"] = end(p, topic, pid, epoch, True)
        return out

    pair.same(scenario, drop=DROP)


def test_add_partitions_errors(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        pid, epoch = begin(p, topic)
        return {
            "unknown_topic": add_partitions(p, topic, pid, epoch, {topic: [0], f"{topic}-none": [0]}),
            "unknown_partition": add_partitions(p, topic, pid, epoch, {topic: [0, 9]}),
            "wrong_pid": add_partitions(p, topic, pid + 1, epoch, {topic: [0]}),
            "wrong_epoch": add_partitions(p, topic, pid, epoch + 3, {topic: [0]}),
            "unknown_txn": add_partitions(p, f"{topic}-none", pid, epoch, {topic: [0]}),
            "state": describe(p, topic),
        }

    pair.same(scenario, drop=DROP)


def test_add_offsets_and_txn_offset_commit(pair: Pair, topic: str) -> None:
    group = f"{topic}-g"

    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        pid, epoch = begin(p, topic)

        def add_offsets(txn_id: str, producer_id: int) -> Any:
            body = {"transactional_id": txn_id, "producer_id": producer_id, "producer_epoch": epoch, "group_id": group}
            return p.call(ApiKey.ADD_OFFSETS_TO_TXN, 4, body, p.coordinator(txn_id, TXN))

        def txn_commit(name: str) -> Any:
            body = {"transactional_id": topic, "group_id": group, "producer_id": pid, "producer_epoch": epoch,
                    "generation_id": -1, "member_id": "", "group_instance_id": None, "topics": [
                        {"name": name, "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                       "committed_metadata": ""}]}]}  # fmt: skip
            return p.call(ApiKey.TXN_OFFSET_COMMIT, 4, body, p.coordinator(group))

        out = {"wrong_pid": add_offsets(topic, pid + 1), "unknown_txn": add_offsets(f"{topic}-none", pid),
               "add": add_offsets(topic, pid)}  # fmt: skip
        out["commit_offsets"] = txn_commit(topic)
        out["state"] = describe(p, topic)
        out["end"] = end(p, topic, pid, epoch, True)
        settled(p, topic)
        body = {"groups": [{"group_id": group, "member_id": None, "member_epoch": -1,
                            "topics": [{"name": topic, "partition_indexes": [0]}]}], "require_stable": True}
        out["offsets"] = p.call(ApiKey.OFFSET_FETCH, 9, body, p.coordinator(group))
        return out

    pair.same(scenario, drop=DROP)


def test_describe_and_list_transactions(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        pid, epoch = begin(p, f"{topic}-a")
        add_partitions(p, f"{topic}-a", pid, epoch, {topic: [0]})
        begin(p, f"{topic}-b")

        def listed(states: list[str], pids: list[int]) -> Any:
            """Asked of every node, as Kafka's Admin.listTransactions does (each pyk shard is a node)."""
            body = {"state_filters": states, "producer_id_filters": pids, "duration_filter": -1}
            answers = [p.call(ApiKey.LIST_TRANSACTIONS, 1, body, node) for node in p.nodes()]
            return {"error_codes": sorted({a["error_code"] for a in answers}),
                    "unknown_state_filters": sorted({s for a in answers for s in a["unknown_state_filters"]}),
                    "transaction_states": sorted((t["transactional_id"], t["transaction_state"]) for a in answers
                                                 for t in a["transaction_states"] if t["transactional_id"].startswith(topic))}

        return {"unknown": describe(p, f"{topic}-none"), "a": describe(p, f"{topic}-a"), "b": describe(p, f"{topic}-b"),
                "all": listed([], []), "ongoing": listed(["Ongoing"], []), "by_pid": listed([], [pid]),
                "bogus_state": listed(["NoSuchState"], [])}

    pair.same(scenario, drop=DROP)
