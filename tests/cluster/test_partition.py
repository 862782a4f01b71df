"""A network partition isolating the leader's host (hosts in network namespaces, tests/cluster/netns.py;
replication.factor=3, min.insync.replicas=2).  The cut-off leader cannot acknowledge an acks=all
write, whether ZooKeeper is cut off with the other hosts (its session expires; the majority elects
a new leader and goes on) or stays reachable (it shrinks its ISR to itself and answers
NOT_ENOUGH_REPLICAS; records it appended before the shrink stay, as in Kafka: an acks=all error
means "not known to be replicated", not "not written").  After healing, a deposed leader truncates
what it appended alone, and consumers see the same records from every replica."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.netns import Network
from tests.helpers import confluent_produce, confluent_read_to_end, make_records


def _produce_all_failing(bootstrap: str, topic: str, count: int) -> list[Any]:
    """acks=all writes through `bootstrap` alone; returns each delivery's outcome (error or offset)."""
    from confluent_kafka import Producer

    outcomes: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 15000,
                         "request.timeout.ms": 5000, "retry.backoff.ms": 200, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, f"minority-{i}".encode(), partition=0,
                         on_delivery=lambda err, msg: outcomes.append(err if err is not None else msg.offset()))
    assert producer.flush(60) == 0, "deliveries still pending"
    return outcomes


def _values(cluster: Cluster, topic: str) -> list[bytes]:
    return [r.value or b"" for r in confluent_read_to_end(cluster.bootstrap, topic, timeout=60)]


@pytest.mark.parametrize("zookeeper_cut", [True, False], ids=["leader-alone", "leader-keeps-zookeeper"])
def test_a_partitioned_leader_acknowledges_nothing_and_leaves_no_divergence(
        netns_cluster_factory: Callable[..., Cluster], network: Network, topic: str, zookeeper_cut: bool) -> None:
    cluster = netns_cluster_factory(replica_lag_time_max_ms=4000)
    cluster.create_topic(topic, min_insync_replicas=2)
    confluent_produce(cluster.bootstrap, topic, make_records(20, prefix="before"), acks="all")
    old = cluster.partition(topic).leader
    isolated = cluster.host_of(old)
    majority = [h for h in cluster.hosts if h is not isolated]
    network.partition([cluster.hosts.index(isolated)], zookeeper=zookeeper_cut)

    outcomes = _produce_all_failing(isolated.bootstrap, topic, 10)
    assert len(outcomes) == 10 and all(not isinstance(o, int) for o in outcomes), \
        f"the cut-off leader acknowledged acks=all writes: {outcomes}"
    print(f"minority deliveries: {sorted({str(o) for o in outcomes})}")
    during = 0
    seen_by_majority = Cluster(cluster.zookeeper, majority)
    if zookeeper_cut:  # the majority elects a leader and takes writes meanwhile
        cluster.wait_for("a leader on the majority side",
                         lambda: seen_by_majority.partition(topic).leader not in (old, -1), 30)
        during = 30
        confluent_produce(seen_by_majority.bootstrap, topic, make_records(during, prefix="majority"), acks="all",
                          **{"message.timeout.ms": 60000})
    else:
        cluster.wait_for("the leader alone in its ISR", lambda: seen_by_majority.partition(topic).isrs == [old], 30)

    network.heal()  # the cut-off host answers stale metadata until it rejoins: ask the others
    cluster.wait_for("the cut-off replica back in the ISR", lambda: old in seen_by_majority.partition(topic).isrs, 60)
    confluent_produce(cluster.bootstrap, topic, make_records(10, prefix="after"), acks="all",
                      **{"message.timeout.ms": 60000})
    seen = [v.decode() for v in _values(cluster, topic)]
    middle = seen[20:-10]
    assert seen[:20] == [f"before-{i}" for i in range(20)] and seen[-10:] == [f"after-{i}" for i in range(10)], seen
    if zookeeper_cut:  # what the cut-off leader appended alone is gone
        assert middle == [f"majority-{i}" for i in range(during)], middle
    else:  # it kept leading: records it appended before its ISR shrank (answered with an error) may stay
        assert all(v.startswith("minority-") for v in middle), middle
    if zookeeper_cut:
        assert "truncating from" in isolated.log_text(), "the old leader kept what it appended alone"
    # Every replica holds the same records: stop the leader twice, reading from each new one.
    for _ in range(2):
        leader = cluster.partition(topic).leader
        host = cluster.host_of(leader)
        assert host.stop() == 0
        cluster.wait_for("another leader", lambda lead=leader: cluster.partition(topic).leader not in (lead, -1), 30)
        assert [v.decode() for v in _values(cluster, topic)] == seen, f"replicas diverge (leader {leader} stopped)"
        host.start()
        cluster.wait_for("the stopped replica back in the ISR", lambda: len(cluster.partition(topic).isrs) == 3, 60)
