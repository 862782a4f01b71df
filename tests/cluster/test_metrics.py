"""Replication metrics of a cluster under Kafka's names (docs/metrics.md), scraped from each
host's metrics.listener while three hosts replicate an RF=3 topic: every partition is led once
and fully replicated; a paused follower holds acks=all answers in its leader's Produce
purgatory, then leaves the ISR and its leaders count the partitions under-replicated until it
runs again and catches up; a partition whose only replica stops is offline on the controller
until it comes back."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.conftest import Cluster
from tests.helpers import free_port

LAG_MS = 6000  # replica.lag.time.max.ms: the window in which acks=all answers wait for the paused follower
PARTITIONS = "kafka_server_replicamanager_partitioncount"
LEADERS = "kafka_server_replicamanager_leadercount"
URP = "kafka_server_replicamanager_underreplicatedpartitions"
AT_MIN_ISR = "kafka_server_replicamanager_atminisrpartitioncount"
UNDER_MIN_ISR = "kafka_server_replicamanager_underminisrpartitioncount"
OFFLINE = "kafka_controller_kafkacontroller_offlinepartitionscount"
CONTROLLER = "kafka_controller_kafkacontroller_activecontrollercount"
PRODUCE_WAITING = "kafka_server_delayedoperationpurgatory_purgatorysize{delayedoperation=Produce}"


def _scrape(address: str) -> dict[str, float]:
    """One host's /metrics: `name` or `name{label=value,...}` -> value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else ""): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(metrics: list[str], name: str) -> float:
    return sum(_scrape(address)[name] for address in metrics)


def test_replication_gauges_follow_the_isr_and_the_controller_counts_offline_partitions(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    metrics = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    # The leaders' own ISR path: a paused follower keeps its ZooKeeper session (and leaderships)
    # and leaves the ISRs it lags in after replica.lag.time.max.ms.
    cluster = cluster_factory(hosts=3, metrics_listener=lambda i: metrics[i], replica_lag_time_max_ms=LAG_MS,
                              zookeeper_session_timeout_ms=30000, auto_leader_rebalance_enable="false")
    cluster.create_topic(topic, partitions=3, min_insync_replicas=2)

    def settled() -> bool:
        md = cluster.admin().list_topics(timeout=10)
        parts = [p for t in md.topics.values() for p in t.partitions.values()]
        shots = [_scrape(address) for address in metrics]
        return (sum(s[LEADERS] for s in shots) == len(parts)
                and sum(s[PARTITIONS] for s in shots) == sum(len(p.replicas) for p in parts)
                and all(s[URP] == s[UNDER_MIN_ISR] == s[OFFLINE] == 0 for s in shots)
                and sum(s[CONTROLLER] for s in shots) == 1)

    cluster.wait_for("every partition led once and fully replicated, one controller", settled)
    controller = next(i for i, address in enumerate(metrics) if _scrape(address)[CONTROLLER] == 1)
    paused = next(i for i in range(3) if i != controller)  # the controller keeps running throughout
    paused_node = 1 + 100 * paused
    others = [address for i, address in enumerate(metrics) if i != paused]  # a paused host answers no scrape
    led_elsewhere = [p for p in cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions.values()
                     if p.leader != paused_node]
    assert led_elsewhere, "placement spreads the leaders"
    waiting = led_elsewhere[0]
    leader_metrics = metrics[waiting.leader // 100]

    # Connected to the leader and with metadata before the pause, so the sends below reach the
    # leader at once (a bootstrap or metadata request to the paused host would hang).
    producer = Producer({"bootstrap.servers": cluster.hosts[waiting.leader // 100].bootstrap, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 60000})
    failed: list[Any] = []
    producer.produce(topic, b"warm-up", partition=waiting.id,
                     on_delivery=lambda err, msg: err is not None and failed.append(err))
    assert producer.flush(30) == 0 and not failed, failed
    pids = cluster.hosts[paused].pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(10):
            producer.produce(topic, f"v{i}".encode(), partition=waiting.id,
                             on_delivery=lambda err, msg: err is not None and failed.append(err))
        producer.poll(0)
        # Before the ISR shrinks the answers wait for the paused follower (Kafka's DelayedProduce).
        cluster.wait_for("acks=all answers waiting in the leader's Produce purgatory",
                         lambda: _scrape(leader_metrics)[PRODUCE_WAITING] >= 1)
        cluster.wait_for("the leaders counting their partitions under-replicated, at min.insync.replicas",
                         lambda: _total(others, URP) >= len(led_elsewhere) and _total(others, AT_MIN_ISR) >= len(
                             led_elsewhere))
        assert _total(others, UNDER_MIN_ISR) == 0  # an ISR of two meets min.insync.replicas=2
        assert producer.flush(60) == 0 and not failed, failed[:3]  # answered once the ISR shrank
        cluster.wait_for("the Produce purgatory empty again", lambda: _scrape(leader_metrics)[PRODUCE_WAITING] == 0)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    cluster.wait_for("the follower caught up and back in every ISR: no partition under-replicated",
                     lambda: all(_scrape(address)[URP] == 0 for address in metrics)
                     and all(len(p.isrs) == 3 for p in cluster.admin().list_topics(topic, timeout=10)
                             .topics[topic].partitions.values()), 60)

    # A partition whose one replica stops has no live leader: the controller counts it offline.
    solo = f"{topic}-solo"
    admin = cluster.admin()  # kept until the answer
    admin.create_topics([NewTopic(solo, num_partitions=1, replica_assignment=[[paused_node]])])[solo].result(30)
    cluster.wait_for("the solo partition led", lambda: cluster.partition(solo).leader == paused_node)
    assert cluster.hosts[paused].stop() == 0
    cluster.wait_for("the controller counting the solo partition offline",
                     lambda: _scrape(metrics[controller])[OFFLINE] >= 1)
    bystander = next(i for i in range(3) if i not in (paused, controller))
    assert _scrape(metrics[bystander])[OFFLINE] == _scrape(metrics[bystander])[CONTROLLER] == 0  # controller's metric
    cluster.hosts[paused].start()
    cluster.wait_for("the solo partition online again", lambda: _scrape(metrics[controller])[OFFLINE] == 0
                     and cluster.partition(solo).leader == paused_node, 60)
