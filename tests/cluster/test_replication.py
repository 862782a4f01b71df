"""Replication in a ZooKeeper cluster of real pyk hosts, seen by real clients: metadata of every
node, host-aware placement, acks=all reaching every replica, min.insync.replicas, and the ISR
shrinking when a follower stops fetching and growing back when it catches up; and acks=all
answers and consumers woken by each write at once (no long poll sitting out its max wait)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from tests.cluster.conftest import Cluster, assert_not_enough_replicas
from tests.helpers import confluent_produce, confluent_read_to_end, make_records


def test_metadata_lists_every_node_and_places_replicas_on_distinct_hosts(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    cluster = cluster_factory(hosts=2, shards=2)
    cluster.create_topic(topic, partitions=4, replication_factor=2)
    md = cluster.admin().list_topics(topic, timeout=10)
    assert sorted(md.brokers) == [1, 2, 101, 102]
    assert md.controller_id in (1, 101)
    leaders = set()
    for p in md.topics[topic].partitions.values():
        assert len(p.replicas) == 2 and sorted(p.isrs) == sorted(p.replicas)
        assert len({r // 100 for r in p.replicas}) == 2, f"partition {p.id}: replicas {p.replicas} share a host"
        assert p.leader == p.replicas[0]
        leaders.add(p.leader)
    assert len(leaders) == 4, f"leaders {leaders}: not spread over the four shard nodes"


def test_acks_all_reaches_every_replica_and_any_host_serves_the_topic(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=2)
    records = make_records(500, value_size=100)
    acked = confluent_produce(cluster.hosts[1].bootstrap, topic, records, **{"acks": "all", "enable.idempotence": True})
    assert [offset for _, offset in acked] == list(range(500))
    part = cluster.partition(topic)
    sizes = cluster.wait_for("every replica's log holding the records",
                             lambda: (s := {n: cluster.log_size(n, topic) for n in part.replicas})
                             and len(set(s.values())) == 1 and s)
    assert set(sizes.values()) != {0}
    for host in cluster.hosts:  # a consumer bootstrapping from any host reads it all, in order
        got = confluent_read_to_end(host.bootstrap, topic)
        assert [r.value for r in got] == [r.value for r in records]


def test_not_enough_replicas_when_the_isr_is_below_min_insync(cluster_factory: Callable[..., Cluster],
                                                              topic: str) -> None:
    from kafka import KafkaProducer

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=3)
    follower = next(r for r in cluster.partition(topic).replicas if r != cluster.partition(topic).leader)
    assert cluster.host_of(follower).stop() == 0  # its session closes: the controller drops it from the ISR
    cluster.wait_for("the stopped follower out of the ISR", lambda: follower not in cluster.partition(topic).isrs)
    assert_not_enough_replicas(cluster.bootstrap, topic)
    relaxed = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=1, retries=0)
    try:
        assert relaxed.send(topic, b"acks=1").get(timeout=30).offset == 0
    finally:
        relaxed.close()


def test_isr_shrinks_when_a_follower_stops_and_expands_when_it_catches_up(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # The leader's own ISR path: replica.lag.time.max.ms well below the session timeout, so the
    # stopped follower leaves the ISR through its leader, not through the controller.
    cluster = cluster_factory(hosts=3, replica_lag_time_max_ms=1500, zookeeper_session_timeout_ms=20000)
    cluster.create_topic(topic, min_insync_replicas=2)
    part = cluster.partition(topic)
    follower = next(r for r in part.replicas if r != part.leader)
    stopped = cluster.host_of(follower)
    pids = stopped.pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        isr = cluster.wait_for("the stopped follower out of the ISR",
                               lambda: (p := cluster.partition(topic)) and follower not in p.isrs and p.isrs, 15)
        assert sorted(isr) == sorted(r for r in part.replicas if r != follower)
        # acks=all goes on with the two replicas left (min.insync.replicas=2)
        records = make_records(50)
        acked = confluent_produce(cluster.host_of(part.leader).bootstrap, topic, records, acks="all")
        assert len(acked) == 50
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    cluster.wait_for("the follower back in the ISR", lambda: follower in cluster.partition(topic).isrs, 30)
    cluster.wait_for("the follower's log caught up", lambda: cluster.log_size(follower, topic)
                     == cluster.log_size(part.leader, topic) > 0)


def test_a_follower_behind_the_leaders_log_start_starts_over_there(cluster_factory: Callable[..., Cluster],
                                                                   topic: str) -> None:
    from confluent_kafka import TopicPartition

    cluster = cluster_factory(hosts=2)
    cluster.create_topic(topic, replication_factor=2)
    part = cluster.partition(topic)
    follower = next(r for r in part.replicas if r != part.leader)
    leader_host = cluster.host_of(part.leader)
    confluent_produce(leader_host.bootstrap, topic, make_records(50), acks="all")
    assert cluster.host_of(follower).stop() == 0
    cluster.wait_for("the stopped follower out of the ISR", lambda: cluster.partition(topic).isrs == [part.leader])
    confluent_produce(leader_host.bootstrap, topic, make_records(100, prefix="later"), acks="all")
    admin = cluster.admin()
    deleted = admin.delete_records([TopicPartition(topic, 0, 120)])
    assert next(iter(deleted.values())).result(30).low_watermark == 120
    # The follower's log ends at 50, below the leader's log start: it empties its log, starts at
    # 120 and catches up from there.
    cluster.host_of(follower).start()
    cluster.wait_for("the follower back in the ISR", lambda: follower in cluster.partition(topic).isrs, 60)
    assert "truncated fully, the log now starts at 120" in cluster.host_of(follower).log_text()


def test_acks_all_writes_are_answered_and_consumed_without_sitting_out_a_fetch_wait(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # Waits of 5 s, followers' and consumer's: a write that wakes no parked fetch (one parked a
    # loop turn after its read, an append in between) waits for one of them to run out, which
    # no load makes out of one write's round of leader -> followers -> leader.  Two producers
    # write at the same moment after each idle spell, so the followers' fetches after the first
    # append meet the second one.
    from confluent_kafka import Consumer, Producer, TopicPartition

    wait_ms = 5000
    cluster = cluster_factory(hosts=3, replica_fetch_wait_max_ms=wait_ms)
    cluster.create_topic(topic, min_insync_replicas=2)
    conf = {"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0}
    producers = [Producer(conf), Producer(conf)]
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "fetch.wait.max.ms": wait_ms})
    consumer.assign([TopicPartition(topic, 0, 0)])
    sent: dict[bytes, float] = {}
    acked: dict[bytes, float] = {}
    consumed: dict[bytes, float] = {}

    def write(producer: Producer, value: bytes) -> None:
        sent[value] = time.monotonic()
        producer.produce(topic, value, on_delivery=lambda err, _m: err is None and acked.setdefault(
            value, time.monotonic()))
        producer.flush(30)

    try:
        for p in producers:  # connected and warm before the first timed write
            p.produce(topic, b"warm")
            p.flush(30)
        for round_ in range(8):
            time.sleep(0.3 + 0.1 * round_)  # followers and consumer parked, each at its own phase
            values = [f"r{round_}-p{i}".encode() for i in range(2)]
            threads = [threading.Thread(target=write, args=(p, v)) for p, v in zip(producers, values, strict=True)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while not all(v in consumed for v in values) and time.monotonic() < deadline:
                msg = consumer.poll(0.01)
                if msg is not None and msg.error() is None:
                    consumed.setdefault(msg.value(), time.monotonic())
            for t in threads:
                t.join(30)
    finally:
        consumer.close()
    timed = [v for v in sent if v.startswith(b"r")]
    assert len(timed) == 16
    missing = [v for v in timed if v not in acked or v not in consumed]
    assert not missing, f"not acknowledged or not consumed: {missing}"
    took = {v.decode(): (round(acked[v] - sent[v], 3), round(consumed[v] - sent[v], 3)) for v in timed}
    # Generous for a loaded machine, still far below one wait of 5 s.
    assert max(ack for ack, _ in took.values()) < wait_ms / 2000, f"(ack, read) seconds per write: {took}"
    assert max(read for _, read in took.values()) < wait_ms / 2000, f"(ack, read) seconds per write: {took}"


def test_acks_all_waiting_when_the_isr_shrinks_below_min_insync_gets_not_enough_replicas_after_append(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # The follower is paused while an acks=all write waits for it: the leader drops it from the
    # ISR after replica.lag.time.max.ms, and the write, already in the leader's log, is answered
    # NOT_ENOUGH_REPLICAS_AFTER_APPEND (Kafka's DelayedProduce).  A long session keeps the paused
    # host registered, so the leader's own ISR shrink is what answers the write.
    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasAfterAppendError, NotEnoughReplicasError

    cluster = cluster_factory(hosts=2, replica_lag_time_max_ms=2000, zookeeper_session_timeout_ms=20000)
    cluster.create_topic(topic, replication_factor=2, min_insync_replicas=2)
    part = cluster.partition(topic)
    follower = next(r for r in part.replicas if r != part.leader)
    paused = cluster.host_of(follower)
    producer = KafkaProducer(bootstrap_servers=cluster.host_of(part.leader).bootstrap, acks="all", retries=0,
                             request_timeout_ms=30000)
    try:
        cluster.wait_for("a first acks=all write", lambda: producer.send(topic, b"warm").get(timeout=30))
        answers: list[str] = []
        for attempt in range(3):  # bounded: a write that arrives after the shrink is refused before the append
            cluster.wait_for("the follower in the ISR", lambda: follower in cluster.partition(topic).isrs)
            pids = paused.pids()
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                producer.send(topic, f"waits-{attempt}".encode()).get(timeout=30)
                answers.append("NONE")
            except NotEnoughReplicasAfterAppendError:
                answers.append("NOT_ENOUGH_REPLICAS_AFTER_APPEND")
            except NotEnoughReplicasError:
                answers.append("NOT_ENOUGH_REPLICAS")
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
            if answers[-1] != "NOT_ENOUGH_REPLICAS":
                break
        assert answers[-1] == "NOT_ENOUGH_REPLICAS_AFTER_APPEND", answers
    finally:
        producer.close()
    # The refused write is in the log (appended, not acknowledged), and the follower catches up.
    cluster.wait_for("the follower back in the ISR", lambda: follower in cluster.partition(topic).isrs)
    values = [r.value for r in confluent_read_to_end(cluster.bootstrap, topic)]
    assert f"waits-{len(answers) - 1}".encode() in values, values
    cluster.wait_for("the follower's log caught up", lambda: cluster.log_size(follower, topic)
                     == cluster.log_size(part.leader, topic))


def _connections(pids: list[int], port: int) -> int:
    """Established TCP connections of the processes `pids` to 127.0.0.1:`port` (ss -p)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "dst", f"127.0.0.1:{port}"], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    return sum(1 for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids))


def test_two_replica_fetchers_per_source_node_replicate_every_partition(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # Two hosts each leading 4 of 8 partitions and following the other 4, which hash over both
    # fetcher ids (partition names differing in the last digit do: 0-3 to one, 4-7 to the other).
    cluster = cluster_factory(hosts=2, num_replica_fetchers=2)
    cluster.create_topic(topic, partitions=8, replication_factor=2)
    records = [r for p in range(8) for r in make_records(50, partition=p, prefix=f"p{p}")]
    acked = confluent_produce(cluster.bootstrap, topic, records, acks="all")
    assert sorted(acked) == [(p, i) for p in range(8) for i in range(50)]
    md = cluster.admin().list_topics(topic, timeout=10).topics[topic]
    for p, part in md.partitions.items():
        assert sorted(part.isrs) == sorted(part.replicas) == [1, 101], (p, part.isrs)
        cluster.wait_for(f"partition {p}: both logs equal", lambda p=p: cluster.log_size(1, topic, p)
                         == cluster.log_size(101, topic, p) > 0)
    for host, other in ((0, 1), (1, 0)):  # one connection per fetcher to the other host's node
        cluster.wait_for(f"host {host}: two fetcher connections to host {other}",
                         lambda h=host, o=other: _connections(cluster.hosts[h].pids(), cluster.hosts[o].port) == 2)
