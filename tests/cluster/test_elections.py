"""ElectLeaders (confluent-kafka's elect_leaders): a preferred election moves leaderships back
to the first replicas after a restart moved them away; an unclean one revives a partition whose
in-sync replicas are all gone.  (The automatic rebalance, auto.leader.rebalance.enable, is
checked at the end of the rolling restart in test_rolling_restart.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import Cluster
from tests.cluster.test_failover import ELECTION_DEADLINE_S


def test_preferred_election_moves_leaders_back_to_their_first_replicas(cluster_factory: Callable[..., Cluster],
                                                                        topic: str) -> None:
    from confluent_kafka import ElectionType, KafkaError, TopicPartition

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
    admin = cluster.admin()
    results = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, n) for n in range(3)]).result(30)
    for tp, error in results.items():
        if tp.partition in moved:
            assert error is None, f"{tp}: {error}"
        else:
            assert error is not None and error.code() == KafkaError.ELECTION_NOT_NEEDED, f"{tp}: {error}"
    cluster.wait_for("every partition led by its first replica", lambda: all(
        p.leader == p.replicas[0] for p in cluster.admin().list_topics(topic, timeout=10).topics[topic]
        .partitions.values()))


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
