"""Coordinator failover: the group and transaction coordinators follow the leadership of their
`__consumer_offsets` / `__transaction_state` partitions.  kill -9 of the host leading both the
group's and the transactional id's partitions: the group resumes from its committed offset on
the new leader, and a new producer with the same transactional.id fences the old one, whose
open transaction is aborted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pyk.coordinator import partition_for
from tests.cluster.conftest import Cluster
from tests.helpers import confluent_produce, confluent_read_to_end, make_records

GROUP = "failover-group"
PARTITIONS = 3  # offsets.topic.num.partitions and transaction.state.log.num.partitions of the fixture


def _leaders(cluster: Cluster, topic: str) -> dict[int, int]:
    """partition -> leader of an internal topic, once all its partitions are fully in sync."""
    def check() -> dict[int, int] | None:
        parts = cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions
        if len(parts) == PARTITIONS and all(p.leader >= 0 and len(p.isrs) == 3 for p in parts.values()):
            return {n: p.leader for n, p in parts.items()}
        return None

    leaders: dict[int, int] = cluster.wait_for(f"{topic} in sync", check, 60)
    return leaders


def _consume(bootstrap: str, topic: str, count: int, commit: bool) -> list[Any]:
    """`count` messages read by a member of GROUP (committing their offsets when `commit`)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + 90
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
        assert len(out) == count, f"read {len(out)} of {count} messages"
        if commit:
            consumer.commit(message=out[-1], asynchronous=False)
    finally:
        consumer.close()
    return out


def test_coordinators_fail_over_with_their_partitions_leadership(cluster_factory: Callable[..., Cluster],
                                                                 topic: str) -> None:
    from confluent_kafka import KafkaException, Producer

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=2)
    confluent_produce(cluster.bootstrap, topic, make_records(10), acks="all")
    assert [m.offset() for m in _consume(cluster.bootstrap, topic, 4, commit=True)] == [0, 1, 2, 3]
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "warm-up"}).init_transactions(30)

    coordinator = _leaders(cluster, "__consumer_offsets")[partition_for(GROUP, PARTITIONS)]
    txn_leaders = _leaders(cluster, "__transaction_state")
    # A transactional id whose coordinator runs on the same host as the group's.
    tid = next(t for t in (f"txn-{i}" for i in range(100))
               if txn_leaders[partition_for(t, PARTITIONS)] // 100 == coordinator // 100)
    old = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid, "acks": "all"})
    old.init_transactions(30)
    old.begin_transaction()
    old.produce(topic, b"open", partition=0)
    old.flush(30)

    cluster.host_of(coordinator).kill9()
    # The group resumes from its committed offset on the new coordinator.
    assert [m.offset() for m in _consume(cluster.bootstrap, topic, 6, commit=True)] == [4, 5, 6, 7, 8, 9]
    # The same transactional.id works again: its new coordinator aborts the open transaction.
    new = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid, "acks": "all"})
    new.init_transactions(60)
    new.begin_transaction()
    new.produce(topic, b"after", partition=0)
    new.commit_transaction(60)
    with pytest.raises(KafkaException):  # the old instance is fenced
        old.commit_transaction(30)
    values = [r.value for r in confluent_read_to_end(cluster.bootstrap, topic)]
    assert values[10:] == [b"after"]
    survivors = [h for h in cluster.hosts if h.running]
    assert any("__consumer_offsets-" in h.log_text() and "led here: loaded" in h.log_text() for h in survivors)


def test_an_acknowledged_commit_survives_a_kill_of_its_coordinator_right_after(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """Offset commits are answered once the ISR of the group's `__consumer_offsets` partition
    has them (Kafka's acks=-1 for coordinator writes): the host answering a commit is killed
    the moment the commit returns, and the coordinator elected next returns that offset."""
    from confluent_kafka import Consumer, TopicPartition

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic)
    group = "commit-kill-group"

    def consumer() -> Any:
        return Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})

    def committed() -> int | None:
        c = consumer()
        try:
            return int(c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
        finally:
            c.close()

    warm_up = consumer()
    warm_up.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)  # creates __consumer_offsets
    warm_up.close()
    for round_ in range(1, 4):
        coordinator = _leaders(cluster, "__consumer_offsets")[partition_for(group, PARTITIONS)]
        offset = 100 * round_
        c = consumer()
        try:
            c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
            host = cluster.host_of(coordinator)
            host.kill9()
        finally:
            c.close()
        seen = cluster.wait_for("the committed offset from the new coordinator", committed, 90)
        assert seen == offset, f"round {round_}: the new coordinator returned {seen}, the commit acknowledged {offset}"
        host.start()
    _leaders(cluster, "__consumer_offsets")  # the last restarted host back in sync before the teardown


def test_a_commit_its_isr_does_not_confirm_in_time_is_refused_and_not_applied(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """The other side of acks=-1: with the followers of the group's partition stopped (still in
    the ISR: a long session and lag time), a commit and an OffsetDelete are each answered
    COORDINATOR_NOT_AVAILABLE after offsets.commit.timeout.ms (Kafka's mapping of
    REQUEST_TIMED_OUT) and OffsetFetch still answers the previous offset; once they fetch
    again, a commit goes through."""
    import asyncio
    import os
    import signal

    from confluent_kafka import Consumer, TopicPartition

    from pyk.client import Connection
    from pyk.errors import ErrorCode
    from pyk.protocol import ApiKey

    cluster = cluster_factory(hosts=3, zookeeper_session_timeout_ms=20000, replica_lag_time_max_ms=60000,
                              offsets_commit_timeout_ms=1000)
    cluster.create_topic(topic)
    group = "unconfirmed-group"

    def commit(offset: int) -> None:
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        finally:
            c.close()

    commit(5)
    coordinator = cluster.host_of(_leaders(cluster, "__consumer_offsets")[partition_for(group, PARTITIONS)])

    async def commit_then_fetch(offset: int) -> tuple[int, int, int]:
        address, _, port = coordinator.bootstrap.rpartition(":")
        conn = await Connection.open(address, int(port))
        try:
            committed = await conn.request(ApiKey.OFFSET_COMMIT, 2, {
                "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
                "topics": [{"name": topic, "partitions": [
                    {"partition_index": 0, "committed_offset": offset, "committed_metadata": ""}]}]})
            deleted = await conn.request(ApiKey.OFFSET_DELETE, 0, {
                "group_id": group, "topics": [{"name": topic, "partitions": [{"partition_index": 0}]}]})
            fetched = await conn.request(ApiKey.OFFSET_FETCH, 1, {
                "group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}]})
        finally:
            conn.close()
        return (committed["topics"][0]["partitions"][0]["error_code"], deleted["error_code"],
                fetched["topics"][0]["partitions"][0]["committed_offset"])

    pids = [pid for host in cluster.hosts if host is not coordinator for pid in host.pids()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        code, delete_code, offset = asyncio.run(commit_then_fetch(9))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert (ErrorCode(code), ErrorCode(delete_code), offset) == (
        ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_NOT_AVAILABLE, 5)
    commit(10)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        assert c.committed([TopicPartition(topic, 0)], timeout=30)[0].offset == 10
    finally:
        c.close()


def test_an_end_txn_its_isr_does_not_confirm_in_time_is_refused_and_not_applied(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """The same for a transaction: with the followers of the id's `__transaction_state`
    partition stopped (still in the ISR), EndTxn(commit) is answered COORDINATOR_NOT_AVAILABLE
    after request.timeout.ms (Kafka's appendTransactionToLog mapping) and the transaction is
    still Ongoing: the PrepareCommit is not its state and sent no marker.  Once the followers
    fetch again, the producer's retried EndTxn commits it."""
    import os
    import signal

    from confluent_kafka import Producer

    from pyk.errors import ErrorCode
    from pyk.protocol import ApiKey

    cluster = cluster_factory(hosts=3, zookeeper_session_timeout_ms=20000, replica_lag_time_max_ms=60000,
                              request_timeout_ms=1000)
    cluster.create_topic(topic)
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "warm-up"}).init_transactions(30)
    tid = "unconfirmed-txn"
    coordinator = cluster.host_of(_leaders(cluster, "__transaction_state")[partition_for(tid, PARTITIONS)])

    def call(*requests: tuple[ApiKey, int, dict[str, Any]]) -> list[dict[str, Any]]:
        return _call(coordinator, *requests)

    def state() -> str:
        return str(_described_transaction(coordinator, tid)["transaction_state"])

    [init] = call((ApiKey.INIT_PRODUCER_ID, 1, {"transactional_id": tid, "transaction_timeout_ms": 60000}))
    producer = {"transactional_id": tid, "producer_id": init["producer_id"], "producer_epoch": init["producer_epoch"]}
    [added] = call((ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
        "v3_and_below_transactional_id": tid, "v3_and_below_producer_id": init["producer_id"],
        "v3_and_below_producer_epoch": init["producer_epoch"],
        "v3_and_below_topics": [{"name": topic, "partitions": [0]}]}))
    assert added["results_by_topic_v3_and_below"][0]["results_by_partition"][0]["partition_error_code"] == 0
    end_txn = (ApiKey.END_TXN, 3, {**producer, "committed": True})

    pids = [pid for host in cluster.hosts if host is not coordinator for pid in host.pids()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        [ended] = call(end_txn)
        during = state()
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert (ErrorCode(ended["error_code"]), during) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, "Ongoing")
    cluster.wait_for("the retried EndTxn answered", lambda: call(end_txn)[0]["error_code"] == 0, 30)
    cluster.wait_for("the transaction committed", lambda: state() == "CompleteCommit", 30)


def _call(host: Any, *requests: tuple[Any, int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The answers of `requests` (api key, version, body), sent in turn to `host` over pyk's client."""
    import asyncio

    from pyk.client import Connection

    async def call() -> list[dict[str, Any]]:
        address, _, port = host.bootstrap.rpartition(":")
        conn = await Connection.open(address, int(port))
        try:
            return [await conn.request(api, version, body) for api, version, body in requests]
        finally:
            conn.close()

    return asyncio.run(call())


def _described_transaction(host: Any, tid: str) -> dict[str, Any]:
    from pyk.protocol import ApiKey

    [described] = _call(host, (ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [tid]}))
    state: dict[str, Any] = described["transaction_states"][0]
    return state


def test_an_expired_transactional_id_stays_gone_after_a_kill_of_its_coordinator(
        cluster_factory: Callable[..., Cluster]) -> None:
    """A transactional id idle past transactional.id.expiration.ms is dropped once the ISR has
    its tombstone: the coordinator's host is killed the moment it says the id is unknown, and
    the coordinator elected next says so too (with the tombstone lost it would load the id)."""
    from confluent_kafka import Producer

    from pyk.errors import ErrorCode

    cluster = cluster_factory(hosts=3, transactional_id_expiration_ms=1000,
                              transaction_remove_expired_transaction_cleanup_interval_ms=200)
    tid = "expiring-txn"
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid}).init_transactions(30)
    leader = _leaders(cluster, "__transaction_state")[partition_for(tid, PARTITIONS)]
    host = cluster.host_of(leader)
    cluster.wait_for("the id expired", lambda: _described_transaction(host, tid)["error_code"]
                     == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, 30)
    host.kill9()

    def new_coordinator() -> Any:
        leaders = {n: p.leader for n, p in cluster.admin().list_topics("__transaction_state", timeout=10)
                   .topics["__transaction_state"].partitions.items()}
        new = leaders[partition_for(tid, PARTITIONS)]
        return cluster.host_of(new) if new >= 0 and new != leader else None

    def described() -> Any:
        entry = _described_transaction(cluster.wait_for("a new coordinator", new_coordinator, 60), tid)
        return entry if entry["error_code"] != ErrorCode.NOT_COORDINATOR else None

    entry = cluster.wait_for("the new coordinator's answer", described, 60)
    assert ErrorCode(entry["error_code"]) == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, entry
    host.start()
    _leaders(cluster, "__transaction_state")


def _coordinator_of(cluster: Cluster, group: str, topic: str) -> int:
    """The node coordinating `group`, once every `__consumer_offsets` partition is in sync
    (the topic is created by a commit of another group to `topic` first)."""
    from confluent_kafka import Consumer, TopicPartition

    warm_up = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"{group}-warm-up",
                        "enable.auto.commit": False})
    try:
        warm_up.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        warm_up.close()
    return _leaders(cluster, "__consumer_offsets")[partition_for(group, PARTITIONS)]


def _described_group(cluster: Cluster, group: str, consumer_protocol: bool = False) -> tuple[int, dict[str, Any]] | None:
    """(coordinator node, its DescribeGroups v5 / ConsumerGroupDescribe v0 entry for `group`), asked
    over pyk's client; None while no live host names a coordinator.  Not librdkafka's admin
    client: one made and dropped with requests pending while a host is down can abort the
    test process (it aborted in C once in CI, most likely in librdkafka)."""
    from pyk.protocol import ApiKey

    host = next(h for h in cluster.hosts if h.running)
    [found] = _call(host, (ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": [group]}))
    coordinator = found["coordinators"][0]
    if coordinator["error_code"] or not cluster.host_of(coordinator["node_id"]).running:
        return None
    request = ((ApiKey.CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": [group], "include_authorized_operations": False})
               if consumer_protocol else
               (ApiKey.DESCRIBE_GROUPS, 5, {"groups": [group], "include_authorized_operations": False}))
    [described] = _call(cluster.host_of(coordinator["node_id"]), request)
    entry: dict[str, Any] = described["groups"][0]
    return None if entry["error_code"] else (coordinator["node_id"], entry)


def test_a_kip848_assignment_survives_a_kill_of_its_coordinator_right_after(
        cluster_factory: Callable[..., Cluster], topic: str, tmp_path: Any) -> None:
    """A ConsumerGroupHeartbeat is answered once the ISR has its records (Kafka's coordinator
    runtime answers after the commit): the member (librdkafka, group.protocol=consumer) is
    frozen and the coordinator's host killed the moment the member learns its assignment; the
    coordinator elected next describes the member with that assignment (the member cannot
    have rejoined: it is stopped)."""
    import signal

    from tests.groups.conftest import Member

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, partitions=3)
    group = "kip848-kill-group"
    coordinator = _coordinator_of(cluster, group, topic)
    member = Member(tmp_path / "member.jsonl", ["--client", "confluent", "--bootstrap", cluster.bootstrap,
                                                "--group", group, "--topic", topic, "--protocol", "consumer"])
    try:
        assigned = cluster.wait_for("the member's assignment", lambda: {0, 1, 2} <= member.owned() and member.owned(),
                                    60)
        member.proc.send_signal(signal.SIGSTOP)
        cluster.host_of(coordinator).kill9()

        def described() -> Any:
            found = _described_group(cluster, group, consumer_protocol=True)
            return found if found is not None and found[1]["members"] else None

        node, desc = cluster.wait_for("the group on the new coordinator", described, 90)
        assert node != coordinator
        assert [sorted(p for tp in m["assignment"]["topic_partitions"] for p in tp["partitions"])
                for m in desc["members"]] == [sorted(assigned)]
    finally:
        member.proc.kill()
        member.proc.wait(10)
    cluster.host_of(coordinator).start()
    _leaders(cluster, "__consumer_offsets")


def test_an_acknowledged_leave_survives_a_kill_of_its_coordinator_right_after(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """LeaveGroup is answered once the ISR has the group's new (empty) metadata: kafka-python's
    close() waits for that answer, the coordinator's host is killed the moment it returns, and
    the first answer of the coordinator elected next shows the group Empty (with the old
    metadata it would list the member until its 60 s session ran out)."""
    from kafka import KafkaConsumer

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic)
    group = "leave-kill-group"
    coordinator = _coordinator_of(cluster, group, topic)
    consumer = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap, group_id=group, session_timeout_ms=60000,
                             heartbeat_interval_ms=1000, enable_auto_commit=False)
    deadline = time.monotonic() + 60
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
    assert consumer.assignment(), "no assignment within 60 s"
    consumer.close(autocommit=False)  # LeaveGroup, answered
    cluster.host_of(coordinator).kill9()

    def described() -> Any:
        found = _described_group(cluster, group)
        return found if found is not None and found[0] != coordinator else None

    _, desc = cluster.wait_for("the group on the new coordinator", described, 90)
    assert (desc["group_state"], desc["members"]) == ("Empty", []), desc
    cluster.host_of(coordinator).start()
    _leaders(cluster, "__consumer_offsets")


def test_an_acknowledged_commit_transaction_survives_a_kill_of_its_coordinator_right_after(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """EndTxn is answered once the ISR has the PrepareCommit (and no marker is written before):
    the transaction coordinator's host is killed the moment commit_transaction() returns, twice,
    and a read_committed consumer reads each committed transaction (the new coordinator
    completes it from the replicated PrepareCommit; without it the transaction would time out
    and be aborted)."""
    from confluent_kafka import Producer

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=2)
    Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "warm-up"}).init_transactions(30)
    tid = "commit-kill-txn"
    for round_ in range(1, 3):
        coordinator = _leaders(cluster, "__transaction_state")[partition_for(tid, PARTITIONS)]
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid, "acks": "all",
                             "transaction.timeout.ms": 60000})
        producer.init_transactions(60)
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, f"round {round_} #{i}".encode(), partition=0)
        producer.commit_transaction(60)
        host = cluster.host_of(coordinator)
        host.kill9()
        expected = [f"round {r} #{i}".encode() for r in range(1, round_ + 1) for i in range(3)]

        def committed(expected: list[bytes] = expected) -> list[bytes] | None:
            values = [r.value for r in confluent_read_to_end(cluster.bootstrap, topic, timeout=10,
                                                             **{"isolation.level": "read_committed"})]
            return values if values == expected else None

        cluster.wait_for(f"round {round_}: the committed transaction, read_committed", committed, 50)
        host.start()
    _leaders(cluster, "__transaction_state")
