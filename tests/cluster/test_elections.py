"""ElectLeaders (confluent-kafka's elect_leaders, Kafka's kafka-leader-election tool), which goes
to the controller: a preferred election moves leaderships back to the first replicas after a
restart moved them away; an unclean one revives a partition whose in-sync replicas are all gone;
the controller's epoch fences its writes.  (The automatic rebalance,
auto.leader.rebalance.enable, is checked at the end of the rolling restart in
test_rolling_restart.py.)"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from pyk.errors import ErrorCode
from tests.cluster.conftest import Cluster
from tests.cluster.test_failover import ELECTION_DEADLINE_S
from tests.kafka import run_java

LEADER_ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"  # kafka-leader-election.sh


def test_preferred_election_moves_leaders_back_to_their_first_replicas(cluster_factory: Callable[..., Cluster],
                                                                        topic: str) -> None:
    from confluent_kafka import ElectionType, KafkaError, TopicPartition
    from confluent_kafka.admin import AdminClient

    cluster = cluster_factory(hosts=3, auto_leader_rebalance_enable="false")
    cluster.create_topic(topic, partitions=3)
    host = cluster.hosts[0]
    assert host.stop() == 0  # its leaderships move to the other hosts
    host.start()
    def in_sync() -> dict[int, Any] | None:
        parts = cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions
        return parts if all(len(p.isrs) == 3 for p in parts.values()) else None

    parts = cluster.wait_for("every replica back in sync", in_sync)
    moved = {n for n, p in parts.items() if p.leader != p.replicas[0]}
    assert moved, "the restart moved no leadership"
    # Bootstrapped from a host that is not the controller: the clients send ElectLeaders to the
    # controller Metadata names, as Kafka needs.
    controller = cluster.admin().list_topics(timeout=10).controller_id
    other = next(h for i, h in enumerate(cluster.hosts) if i != controller // 100)
    admin = AdminClient({"bootstrap.servers": other.bootstrap})
    results = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, n) for n in range(3)]).result(30)
    for tp, error in results.items():
        if tp.partition in moved:
            assert error is None, f"{tp}: {error}"
        else:
            assert error is not None and error.code() == KafkaError.ELECTION_NOT_NEEDED, f"{tp}: {error}"
    cluster.wait_for("every partition led by its first replica", lambda: all(
        p.leader == p.replicas[0] for p in cluster.admin().list_topics(topic, timeout=10).topics[topic]
        .partitions.values()))
    # Kafka's kafka-leader-election tool (the Java AdminClient): nothing left to elect.
    out = run_java(LEADER_ELECTION, "--bootstrap-server", other.bootstrap, "--election-type", "preferred",
                   "--topic", topic, "--partition", str(min(moved))).stdout
    assert f"Valid replica already elected for partitions {topic}-{min(moved)}" in out, out


def test_unclean_election_revives_a_partition_without_in_sync_replicas(cluster_factory: Callable[..., Cluster],
                                                                       topic: str) -> None:
    from confluent_kafka import ElectionType, KafkaError, TopicPartition

    cluster = cluster_factory(hosts=2)
    cluster.create_topic(topic, replication_factor=2)
    part = cluster.partition(topic)
    follower = next(r for r in part.replicas if r != part.leader)
    assert cluster.host_of(follower).stop() == 0
    cluster.wait_for("the follower out of the ISR", lambda: cluster.partition(topic).isrs == [part.leader])
    cluster.host_of(part.leader).kill9()
    cluster.host_of(follower).start()
    cluster.wait_for("the partition offline", lambda: cluster.partition(topic).leader == -1, ELECTION_DEADLINE_S + 30)
    admin = cluster.admin()
    tp = TopicPartition(topic, 0)
    preferred = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)[tp]
    assert preferred is not None and preferred.code() in (KafkaError.PREFERRED_LEADER_NOT_AVAILABLE,
                                                                  KafkaError.ELECTION_NOT_NEEDED)
    assert admin.elect_leaders(ElectionType.UNCLEAN, [tp]).result(30)[tp] is None
    cluster.wait_for("the out-of-sync replica leading", lambda: cluster.partition(topic).leader == follower)
    assert any("unclean leader election (ElectLeaders)" in h.log_text() for h in cluster.hosts)


def _states(zk: Any, topic: str, partitions: int) -> list[dict[str, Any]]:
    """Each partition's state as ZooKeeper holds it (leader, leader_epoch, isr, controller_epoch)."""
    return [json.loads(zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")[0]) for p in range(partitions)]


def _kazoo(connect: str) -> Any:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=connect)
    zk.start(30)
    return zk


def test_elect_leaders_goes_to_the_controller_and_answers_once_the_new_leaders_are_in_its_metadata(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """As Kafka's: a host that is not the controller answers each partition NOT_CONTROLLER and
    elects nothing; the controller writes each new state with its controller epoch.  KIP-460's
    timeout_ms, as Kafka's DelayedElectLeader: the answer waits until the host knows the new
    leaders, so its Metadata right after (same connection) names them, and until each new
    leader serves its partition (it answers ListOffsets for it at once)."""
    import asyncio

    from pyk.client import Cluster as Client
    from pyk.protocol import ApiKey

    cluster = cluster_factory(hosts=3, auto_leader_rebalance_enable="false")
    cluster.create_topic(topic, partitions=3)
    host = cluster.hosts[0]
    assert host.stop() == 0
    host.start()
    parts = cluster.wait_for("every replica back in sync", lambda: (p := cluster.admin().list_topics(
        topic, timeout=10).topics[topic].partitions) and all(len(x.isrs) == 3 for x in p.values()) and p)
    moved = sorted(n for n, p in parts.items() if p.leader != p.replicas[0])
    assert moved, "the restart moved no leadership"
    controller = cluster.host_of(cluster.admin().list_topics(timeout=10).controller_id)
    other = next(h for h in cluster.hosts if h is not controller)

    async def elect_then_read(bootstrap: str) -> tuple[dict[str, object], list[int], list[int]]:
        client = await Client.connect(bootstrap)
        try:
            answer = await client.conn.request(ApiKey.ELECT_LEADERS, 2, {
                "election_type": 0, "topic_partitions": [{"topic": topic, "partitions": moved}], "timeout_ms": 30000})
            leaders = [p.leader for p in await client.metadata(topic)]
            served = []  # each new leader's own answer for its partition
            for n in moved:
                conn = await client.connection(leaders[n])
                offsets = await conn.request(ApiKey.LIST_OFFSETS, 4, {"replica_id": -1, "isolation_level": 0, "topics": [
                    {"name": topic, "partitions": [{"partition_index": n, "current_leader_epoch": -1, "timestamp": -1}]}]})
                served.append(offsets["topics"][0]["partitions"][0]["error_code"])
            return answer, leaders, served
        finally:
            client.close()

    def codes(answer: dict[str, Any]) -> list[int]:
        return [r["error_code"] for t in answer["replica_election_results"] for r in t["partition_result"]]

    zk = _kazoo(cluster.zookeeper)
    try:
        before = _states(zk, topic, 3)
        refused, _, _ = asyncio.run(elect_then_read(other.bootstrap))
        assert codes(refused) == [ErrorCode.NOT_CONTROLLER] * len(moved), refused
        assert _states(zk, topic, 3) == before, "a host that is not the controller changed a partition state"
        answer, leaders, served = asyncio.run(elect_then_read(controller.bootstrap))
        assert codes(answer) == [0] * len(moved), answer
        assert all(leaders[n] == parts[n].replicas[0] for n in moved), f"leaders {leaders} right after the answer"
        assert served == [0] * len(moved), f"the new leaders' ListOffsets answers right after the election: {served}"
        epoch = int(zk.get("/controller_epoch")[0])
        after = _states(zk, topic, 3)
        assert [(s["leader_epoch"], s["controller_epoch"]) for n, s in enumerate(after) if n in moved] == \
            [(before[n]["leader_epoch"] + 1, epoch) for n in moved], after
    finally:
        zk.stop()
        zk.close()


def test_a_controller_paused_past_its_session_is_deposed_and_changes_no_state(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """Controller-epoch fencing: SIGSTOP of the controller's host past its session.  Another host
    becomes controller with the next controller epoch and moves the paused host's leaderships
    (leader epoch + 1, the new controller epoch) and replicas out of the ISRs.  After SIGCONT
    the old controller steps down and writes no partition state: when it is back in every ISR
    as a follower, each state still has the new controller's leader, leader epoch and
    controller epoch, and /controller_epoch has not moved."""
    cluster = cluster_factory(hosts=3, auto_leader_rebalance_enable="false")
    cluster.create_topic(topic, partitions=3)
    old = cluster.admin().list_topics(timeout=10).controller_id
    paused = cluster.host_of(old)
    zk = _kazoo(cluster.zookeeper)
    try:
        epoch = int(zk.get("/controller_epoch")[0])
        before = _states(zk, topic, 3)
        led = [p for p, s in enumerate(before) if s["leader"] // 100 == old // 100]
        assert led, f"host {old} leads no partition of {topic}: {before}"
        pids = paused.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            def taken_over() -> tuple[int, list[dict[str, Any]]] | None:
                controller = json.loads(zk.get("/controller")[0])["brokerid"]
                states = _states(zk, topic, 3)
                done = controller != old and int(zk.get("/controller_epoch")[0]) == epoch + 1 and \
                    all(r // 100 != old // 100 for s in states for r in s["isr"])
                return (controller, states) if done else None

            new, deposed = cluster.wait_for("a new controller, the paused host out of every ISR", taken_over,
                                            ELECTION_DEADLINE_S + 10)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        assert [(deposed[p]["leader_epoch"], deposed[p]["controller_epoch"]) for p in led] == \
            [(before[p]["leader_epoch"] + 1, epoch + 1) for p in led], deposed
        cluster.wait_for("the old controller back in every ISR", lambda: all(
            len(s["isr"]) == 3 for s in _states(zk, topic, 3)), 60)
        after = _states(zk, topic, 3)
        assert [(s["leader"], s["leader_epoch"], s["controller_epoch"]) for s in after] == \
            [(s["leader"], s["leader_epoch"], s["controller_epoch"]) for s in deposed]
        assert int(zk.get("/controller_epoch")[0]) == epoch + 1
        assert json.loads(zk.get("/controller")[0])["brokerid"] == new
    finally:
        zk.stop()
        zk.close()
    assert f"host {old} is no longer the controller (controller epoch {epoch})" in paused.log_text()


def test_a_controlled_shutdown_takes_the_hosts_replicas_out_of_the_isrs_before_it_stops(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """As Kafka's controller: the stopping host's followers leave the ISRs (and its leaderships
    move) while it is still registered, so no acks=all write waits on a replica going away."""
    import json
    import threading

    from kazoo.client import KazooClient

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, partitions=3)
    host = cluster.hosts[2]
    codes: list[int] = []
    zk = KazooClient(hosts=cluster.zookeeper)
    zk.start(30)
    seen: list[tuple[int, list[int]]] = []  # (partition, isr) read while node 201 was still registered
    try:
        stopping = threading.Thread(target=lambda: codes.append(host.stop()), daemon=True)
        stopping.start()
        while stopping.is_alive():
            registered = zk.exists("/brokers/ids/201") is not None
            isrs = [json.loads(zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")[0])["isr"] for p in range(3)]
            if registered and zk.exists("/brokers/ids/201") is not None:  # registered before and after the read
                seen += [(p, isr) for p, isr in enumerate(isrs) if 201 not in isr]
        stopping.join()
    finally:
        zk.stop()
        zk.close()
    assert codes == [0]
    assert {p for p, _ in seen} == {0, 1, 2}, f"ISRs without node 201 while it was registered: {seen[:5]}"
    assert "controlled shutdown: leaderships moved and out of the ISRs" in host.log_text()


def test_a_deposed_controllers_write_is_refused_by_the_controller_epoch(
        zookeeper: str, caplog: pytest.LogCaptureFixture) -> None:
    """The controller-epoch check itself, without a race to win: two hosts' ZooKeeper sessions
    (pyk.cluster.zk.ZkCluster, in this process, on the test's ZooKeeper).  Host 1 is the
    controller; /controller is deleted (Kafka's way to force a new election) and host 101 takes
    over with the next epoch before host 1 has read anything.  Host 1, still believing itself
    the controller, applies a reassignment: its multi-op is refused on /controller_epoch's
    version, the topic's assignment is unchanged, the answer is NOT_CONTROLLER, and host 1 steps
    down."""
    from pyk.cluster.zk import BrokerInfo, ZkCluster, topic_path
    from pyk.config import ServerConfig

    config = ServerConfig({"zookeeper.connect": zookeeper, "zookeeper.session.timeout.ms": "3000"})
    hosts = [ZkCluster(config, [BrokerInfo(node, "127.0.0.1", 9092 + node, None, node)], lambda: None)
             for node in (1, 101)]
    zk = None
    try:
        for host in hosts:
            host.start()
            host.serving = True
            host.refresh()
        old, new = hosts
        assert old.controller_id == 1 and new.controller_id == 1
        old.apply("create_topic", {"name": "moved", "partitions": 1, "configs": {}, "assignment": [[1, 101]]})
        zk = _kazoo(zookeeper)
        epoch = int(zk.get("/controller_epoch")[0])
        assignment = zk.get(topic_path("moved"))[0]
        zk.delete("/controller")
        new.refresh()
        assert new.controller_id == 101 and int(zk.get("/controller_epoch")[0]) == epoch + 1
        with caplog.at_level(logging.INFO, "pyk.cluster"):
            answer = old.apply("alter_partition_reassignments", {"reassignments": [["moved", 0, [101]]]})
        assert [code for _, _, code, _ in answer] == [ErrorCode.NOT_CONTROLLER], answer
        assert zk.get(topic_path("moved"))[0] == assignment
        assert f"host 1 is no longer the controller (controller epoch {epoch}): /controller_epoch moved on" in caplog.text
        assert old.controller_id == 101  # read again after the refused change
    finally:
        if zk is not None:
            zk.stop()
            zk.close()
        for host in hosts:
            host.close()
