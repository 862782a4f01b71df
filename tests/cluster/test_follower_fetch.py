"""Fetch from the closest replica (KIP-392): three hosts in racks a, b and c with Kafka's
RackAwareReplicaSelector.  A confluent-kafka consumer with client.rack=c reads everything an
acks=all producer wrote from the rack-c follower: the leader answers its first fetch with the
follower as preferred read replica, and the follower host's Prometheus counter of bytes sent to
consumers covers what was read.  When the follower is killed the consumer goes back to the
leader and reads on, with no gap and nothing twice."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import SESSION_TIMEOUT_MS, Cluster
from tests.helpers import free_port

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
RACKS = "abc"


def _bytes_out(metrics: str, topic: str) -> float:
    """kafka_server_brokertopicmetrics_bytesout_total of `topic` on one host's /metrics."""
    url = f"http://{metrics}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    pattern = rf'^kafka_server_brokertopicmetrics_bytesout_total\{{topic="{re.escape(topic)}"\}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def _produce(cluster: Cluster, topic: str, start: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 60000})
    failed: list[Any] = []
    for i in range(start, start + count):
        producer.produce(topic, f"v-{i:06d}".encode(), partition=0,
                         on_delivery=lambda err, msg: err is not None and failed.append(err))
        producer.poll(0)
    assert producer.flush(60) == 0 and not failed, failed[:3]


class _RackConsumer:
    """An assign()-only confluent-kafka consumer in rack c, keeping (offset, value) of each record."""

    def __init__(self, cluster: Cluster, topic: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.records: list[tuple[int, bytes]] = []
        self.consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"rack-c-{topic}",
                                  "client.rack": "c", "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 1000})
        self.consumer.assign([TopicPartition(topic, 0, 0)])

    def read_until(self, cluster: Cluster, count: int, timeout: float) -> None:
        def more() -> bool:
            for msg in self.consumer.consume(num_messages=500, timeout=0.5):
                assert not msg.error(), msg.error()
                self.records.append((msg.offset(), msg.value()))
            return len(self.records) >= count

        cluster.wait_for(f"{count} records read", more, timeout)

    def check(self, total: int) -> None:
        offsets = [o for o, _ in self.records]
        assert offsets == list(range(total)), "a gap or a record read twice"
        assert [v for _, v in self.records] == [f"v-{i:06d}".encode() for i in range(total)]


def test_rack_c_consumer_reads_from_the_rack_c_follower(cluster_factory: Callable[..., Cluster], topic: str) -> None:
    metrics = [f"127.0.0.1:{free_port()}" for _ in RACKS]
    cluster = cluster_factory(hosts=3, broker_rack=lambda i: RACKS[i], replica_selector_class=RACK_AWARE,
                              metrics_listener=lambda i: metrics[i])
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()  # replicas 1 (rack a, the leader), 101 (b), 201 (c)
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 101, 201]],
                                  config={"min.insync.replicas": "2"})])[topic].result(30)
    cluster.wait_for("node 1 leading with the full ISR", lambda: (p := cluster.partition(topic)).leader == 1
                     and len(p.isrs) == 3)
    _produce(cluster, topic, 0, 2000)
    consumer = _RackConsumer(cluster, topic)
    try:
        consumer.read_until(cluster, 2000, 60)
        consumer.check(2000)
        consumed = sum(len(v) for _, v in consumer.records)
        cluster.wait_for("the rack-c follower's bytes sent to consumers", lambda: _bytes_out(metrics[2], topic) >= consumed)

        cluster.hosts[2].kill9()  # the follower goes; the consumer falls back to the leader
        cluster.wait_for("node 201 out of the ISR", lambda: 201 not in cluster.partition(topic).isrs,
                         SESSION_TIMEOUT_MS / 1000 + 15)
        leader_before = _bytes_out(metrics[0], topic)
        _produce(cluster, topic, 2000, 1000)
        consumer.read_until(cluster, 3000, 90)
        consumer.check(3000)
        cluster.wait_for("the leader's bytes sent to consumers", lambda: _bytes_out(metrics[0], topic) > leader_before)
    finally:
        consumer.consumer.close()


def _fetch(host: str, port: int, version: int, topic: str, offset: int, epoch: int, rack: str) -> dict[str, Any]:
    """One consumer Fetch of partition 0 over pyk's client; the partition's answer."""
    import asyncio

    from pyk.client import Connection
    from pyk.protocol import ApiKey

    async def run() -> dict[str, Any]:
        conn = await Connection.open(host, port)
        try:
            body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
                    "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": rack,
                    "topics": [{"topic": topic, "partitions": [{
                        "partition": 0, "current_leader_epoch": epoch, "fetch_offset": offset,
                        "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]}
            answer = await conn.request(ApiKey.FETCH, version, body)
            return dict(answer["responses"][0]["partitions"][0])
        finally:
            conn.close()

    return asyncio.run(run())


def test_preferred_read_replica_and_follower_errors_on_the_wire(cluster_factory: Callable[..., Cluster],
                                                                 topic: str) -> None:
    from confluent_kafka.admin import NewTopic

    from pyk.errors import ErrorCode

    cluster = cluster_factory(hosts=3, broker_rack=lambda i: RACKS[i], replica_selector_class=RACK_AWARE)
    admin = cluster.admin()
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 101, 201]])])[topic].result(30)
    cluster.wait_for("node 1 leading", lambda: cluster.partition(topic).leader == 1)
    _produce(cluster, topic, 0, 10)
    leader = cluster.hosts[0].host, cluster.hosts[0].port
    follower = cluster.hosts[2].host, cluster.hosts[2].port
    # The follower serves once it learned the high watermark (10) from the leader.
    cluster.wait_for("the follower serving the 10 records", lambda: (
        a := _fetch(*follower, 12, topic, 0, 0, "c"))["error_code"] == 0 and a["high_watermark"] == 10 and a["records"])

    answer = _fetch(*leader, 12, topic, 0, 0, "c")
    assert (answer["error_code"], answer["preferred_read_replica"], answer["high_watermark"]) == (0, 201, 10)
    assert not answer["records"]  # no records: the consumer asks node 201
    answer = _fetch(*leader, 12, topic, 0, 0, "a")  # the leader's own rack: served here
    assert (answer["error_code"], answer["preferred_read_replica"]) == (0, -1) and answer["records"]
    answer = _fetch(*leader, 12, topic, 0, 0, "x")  # no replica in that rack
    assert answer["preferred_read_replica"] == -1 and answer["records"]

    assert _fetch(*follower, 12, topic, 11, 0, "c")["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
    assert _fetch(*follower, 12, topic, 10, 0, "c")["error_code"] == ErrorCode.NONE  # at the end: nothing yet
    assert _fetch(*follower, 12, topic, 0, 1, "c")["error_code"] == ErrorCode.UNKNOWN_LEADER_EPOCH
    assert _fetch(*follower, 10, topic, 0, 0, "")["error_code"] == ErrorCode.NOT_LEADER_OR_FOLLOWER  # v10: leaders only
