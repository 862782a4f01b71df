"""Controlled shutdown: SIGTERM of a host first moves its leaderships to other in-sync replicas,
so a rolling restart of every host under an idempotent acks=all producer and a consumer group
makes no partition unavailable: no delivery fails, every acknowledged value is consumed, and
the consumed offsets have no gap.  Afterwards the controller's automatic rebalance
(auto.leader.rebalance.enable, checked every second here) gives every partition back to its
first replica."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import Cluster

PARTITIONS = 3


class _Producer(threading.Thread):
    """Writes "v-<i>" round-robin over the partitions at a steady pace until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.acked: set[bytes] = set()
        self.errors: list[Any] = []
        self.done = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 100})

        def report(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(err)
            else:
                self.acked.add(msg.value())

        i = 0
        while not self.done.is_set():
            producer.produce(self.topic, f"v-{i}".encode(), partition=i % PARTITIONS, on_delivery=report)
            producer.poll(0.005)
            i += 1
        producer.flush(120)


class _Consumer(threading.Thread):
    """A member of one group reading every partition (auto commit) until told to stop."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.seen: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}  # partition -> offsets
        self.values: set[bytes] = set()
        self.done = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "rolling", "auto.offset.reset": "earliest",
                             "session.timeout.ms": 6000, "auto.commit.interval.ms": 200})
        consumer.subscribe([self.topic])
        try:
            while not self.done.is_set():
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    self.seen[msg.partition()].append(msg.offset())
                    self.values.add(msg.value())
        finally:
            consumer.close()


def test_a_rolling_restart_makes_no_partition_unavailable(cluster_factory: Callable[..., Cluster],
                                                          topic: str) -> None:
    cluster = cluster_factory(hosts=3, leader_imbalance_check_interval_seconds=1)
    cluster.create_topic(topic, partitions=PARTITIONS, min_insync_replicas=2)
    producer, consumer = _Producer(cluster.bootstrap, topic), _Consumer(cluster.bootstrap, topic)
    producer.start()
    consumer.start()
    cluster.wait_for("the stream flowing", lambda: len(consumer.values) >= 200, 60)

    def in_sync() -> bool:
        parts = cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions.values()
        return all(len(p.isrs) == 3 and p.leader >= 0 for p in parts)

    for host in cluster.hosts:
        assert host.stop() == 0
        assert "controlled shutdown: leaderships moved and out of the ISRs" in host.log_text()
        host.start()
        cluster.wait_for("the restarted host back in every ISR", in_sync, 90)
    producer.done.set()
    producer.join(150)
    assert not producer.is_alive(), "the producer did not finish"
    assert not producer.errors, f"{len(producer.errors)} deliveries failed, first {producer.errors[0]}"
    cluster.wait_for("every acknowledged value consumed", lambda: producer.acked <= consumer.values, 90)
    consumer.done.set()
    consumer.join(30)
    for partition, offsets in consumer.seen.items():
        distinct = sorted(set(offsets))
        assert distinct == list(range(distinct[0], distinct[0] + len(distinct))), f"a gap in partition {partition}"
    cluster.wait_for("every partition led by its first replica again", lambda: all(
        p.leader == p.replicas[0] for p in cluster.admin().list_topics(topic, timeout=10).topics[topic]
        .partitions.values()))
    assert any("leader rebalance back to the preferred replica" in h.log_text() for h in cluster.hosts)
    print(f"{len(producer.acked)} values acknowledged and consumed over 3 controlled restarts")
