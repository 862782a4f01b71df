"""Replica assignments in a ZooKeeper cluster, seen by confluent-kafka's AdminClient: explicit
assignments over any live nodes, the two shard nodes of a single host included (as librdkafka's
admin tests send them), CreatePartitions with and without one and Kafka's errors for bad ones;
and automatic placement over racks and hosts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

from tests.cluster.conftest import Cluster
from tests.helpers import confluent_produce, confluent_read_to_end, make_records


def _replicas(cluster: Cluster, topic: str, count: int) -> list[tuple[int, list[int], list[int]]] | None:
    """(leader, replicas, isr) of each partition once the topic has `count` partitions, each led
    by its first replica with every replica in sync; None before."""
    t = cluster.admin().list_topics(topic, timeout=10).topics.get(topic)
    if t is None or t.error is not None or len(t.partitions) != count:
        return None
    parts = [t.partitions[p] for p in range(count)]
    if not all(p.leader == p.replicas[0] and sorted(p.isrs) == sorted(p.replicas) for p in parts):
        return None
    return [(p.leader, list(p.replicas), list(p.isrs)) for p in parts]


def _refused(future: Any) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        future.result(30)
    return info.value.args[0]


def test_one_host_replicates_over_its_two_shards_by_explicit_assignment(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # One host under ZooKeeper (what `pyk cluster up --hosts 1 --shards 2` starts): nodes 1 and 2.
    cluster = cluster_factory(hosts=1, shards=2)
    admin = cluster.admin()
    assignment = [[1, 2], [2, 1]]
    created = admin.create_topics([NewTopic(topic, len(assignment), -1, replica_assignment=assignment,
                                            config={"min.insync.replicas": "2"})])
    created[topic].result(30)
    got = cluster.wait_for("both partitions with an ISR of both shards", lambda: _replicas(cluster, topic, 2))
    assert [replicas for _, replicas, _ in got] == assignment
    for p in range(2):
        records = make_records(100, partition=p, prefix=f"p{p}")
        acked = confluent_produce(cluster.bootstrap, topic, records, acks="all")
        assert acked == [(p, i) for i in range(100)]
        assert [r.value for r in confluent_read_to_end(cluster.bootstrap, topic, p)] == [r.value for r in records]
        cluster.wait_for(f"partition {p}: both shards' logs equal", lambda p=p: cluster.log_size(1, topic, p)
                         == cluster.log_size(2, topic, p) > 0)

    # CreatePartitions: an explicit assignment, then none (placed over the shards, RF kept).
    admin.create_partitions([NewPartitions(topic, 3, replica_assignment=[[2, 1]])])[topic].result(30)
    got = cluster.wait_for("partition 2 as assigned, in sync", lambda: _replicas(cluster, topic, 3))
    assert got[2][1] == [2, 1]
    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    got = cluster.wait_for("partitions 3 and 4 replicated", lambda: _replicas(cluster, topic, 5))
    assert all(sorted(replicas) == [1, 2] for _, replicas, _ in got[3:])
    acked = confluent_produce(cluster.bootstrap, topic, make_records(10, partition=4), acks="all")
    assert acked == [(4, i) for i in range(10)]

    # Kafka's errors (ReplicationControlManager), all INVALID_REPLICA_ASSIGNMENT.
    for new, says in [([[1, 7]], "[7]"),  # not a live node
                      ([[1]], "not consistent"),  # fewer replicas than the topic's 2
                      ([[1, 2], [2, 1]], "2 assignment(s)")]:  # more assignments than new partitions
        err = _refused(admin.create_partitions([NewPartitions(topic, 6, replica_assignment=new)])[topic])
        assert (err.code(), says in err.str()) == (KafkaError.INVALID_REPLICA_ASSIGNMENT, True), err
    other = f"{topic}-bad"
    err = _refused(admin.create_topics([NewTopic(other, 1, -1, replica_assignment=[[1, 102]])])[other])
    assert (err.code(), "[102]" in err.str()) == (KafkaError.INVALID_REPLICA_ASSIGNMENT, True), err
    assert cluster.wait_for("5 partitions, none added by the refused calls", lambda: _replicas(cluster, topic, 5))


def test_automatic_placement_spreads_replicas_over_racks_then_hosts(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # Uneven racks: hosts 0 and 1 on rack a, host 2 alone on rack b, two shards each.
    racks = "aab"
    cluster = cluster_factory(hosts=3, shards=2, broker_rack=lambda i: racks[i])
    for rf in (2, 3):
        name = f"{topic}-rf{rf}"
        cluster.create_topic(name, partitions=6, replication_factor=rf)
        placed = cluster.wait_for(f"{name} in sync", lambda n=name: _replicas(cluster, n, 6))
        for _, replicas, _ in placed:
            hosts = [r // 100 for r in replicas]
            assert len(set(hosts)) == rf, f"{name}: replicas {replicas} share a host"
            assert {racks[h] for h in hosts} == {"a", "b"}, f"{name}: replicas {replicas} on one rack"
        leader_hosts = {leader // 100 for leader, _, _ in placed}
        assert leader_hosts == {0, 1, 2}, f"{name}: leaders only on hosts {leader_hosts}"
