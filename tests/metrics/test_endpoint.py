"""The metrics endpoint (`metrics.listener`) of a real `pyk serve`, scraped over HTTP while real
clients produce, consume and commit as a group: the values move as the traffic says they must.

Every wait polls the endpoint for a positive event (a value reached); nothing sleeps to prove an
absence.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import confluent_admin, confluent_produce, create_topic, free_port, make_records, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REQUEST_TIMES = ("totaltime", "requestqueuetime", "localtime", "remotetime", "responsequeuetime", "responsesendtime")


class Endpoint:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""  # not listening (yet)

    def scrape(self) -> Samples:
        status, text = self.get("/metrics")
        assert status == 200, text
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def value(self, name: str, **labels: Any) -> float | None:
        return self.scrape().get((name, frozenset((k, str(v)) for k, v in labels.items())))


def _sum(samples: Samples, name: str, **labels: Any) -> float:
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture
def served(broker_factory) -> tuple[Any, Endpoint]:
    """A two-shard broker with its metrics endpoint on a free port."""
    port = free_port()
    broker = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}",
                                       "log.retention.check.interval.ms": 200, "num.shards": 2})
    return broker, Endpoint(port)


def test_health_and_ready(served) -> None:
    broker, endpoint = served
    assert endpoint.get("/health") == (200, "ok\n")
    status, _ = wait_for(lambda: (r := endpoint.get("/ready"))[0] == 200 and r, what="/ready 200")
    assert status == 200
    samples = endpoint.scrape()
    assert _sum(samples, "pyk_shard_up") == 2


def test_ready_drops_while_a_shard_restarts(served) -> None:
    broker, endpoint = served
    wait_for(lambda: endpoint.get("/ready")[0] == 200, what="/ready 200")
    with open(f"/proc/{broker.proc.pid}/task/{broker.proc.pid}/children") as f:
        shard_pid = int(f.read().split()[-1])
    create_topic(broker.bootstrap, "spread", partitions=4)  # two partitions on each shard
    os.kill(shard_pid, signal.SIGKILL)
    wait_for(lambda: endpoint.get("/ready")[0] == 503, interval=0.02, what="/ready 503 after a shard died")
    offline = ("kafka_controller_kafkacontroller_offlinepartitionscount", frozenset())
    wait_for(lambda: endpoint.scrape()[offline] >= 2, interval=0.02, what="its partitions offline")
    wait_for(lambda: endpoint.get("/ready")[0] == 200, timeout=60, what="/ready 200 after the shard restarted")
    wait_for(lambda: endpoint.scrape()[offline] == 0, what="no partition offline")
    assert endpoint.get("/health")[0] == 200


def test_traffic_offsets_and_lag(served, topic) -> None:
    broker, endpoint = served
    create_topic(broker.bootstrap, topic, partitions=2)
    records = [replace(r, partition=i % 3 % 2) for i, r in enumerate(make_records(60, value_size=200))]
    produced = confluent_produce(broker.bootstrap, topic, records)
    ends = {p: sum(1 for q, _ in produced if q == p) for p in (0, 1)}
    value_bytes = sum(len(r.value) + len(r.key) for r in records)

    group = f"g-{topic}"
    committed = {0: ends[0] // 3, 1: ends[1] // 2}
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100})
    try:
        consumer.subscribe([topic])
        received: list[Any] = []

        def all_received() -> bool:
            received.extend(m for m in consumer.consume(100, timeout=0.5) if not m.error())
            return len(received) >= len(records)

        wait_for(all_received, timeout=30, what="the group consuming every record")
        consumer.commit(offsets=[TopicPartition(topic, p, off) for p, off in committed.items()], asynchronous=False)
    finally:
        consumer.close()

    samples = wait_for(lambda: (s := endpoint.scrape()).get(
        ("kafka_consumergroup_lag", frozenset({("consumergroup", group), ("topic", topic), ("partition", "1")})))
        is not None and s, what="the group's lag")
    for p in (0, 1):
        labels = frozenset({("topic", topic), ("partition", str(p))})
        assert samples[("kafka_log_log_logendoffset", labels)] == ends[p]
        assert samples[("kafka_log_log_logstartoffset", labels)] == 0
        assert samples[("kafka_log_log_numlogsegments", labels)] == 1
        assert samples[("kafka_log_log_size", labels)] > 0
        group_labels = frozenset({("consumergroup", group), ("topic", topic), ("partition", str(p))})
        assert samples[("kafka_consumergroup_current_offset", group_labels)] == committed[p]
        assert samples[("kafka_consumergroup_lag", group_labels)] == ends[p] - committed[p]
    topic_labels = frozenset({("topic", topic)})
    assert samples[("kafka_server_brokertopicmetrics_messagesin_total", topic_labels)] == 60
    assert samples[("kafka_server_brokertopicmetrics_bytesin_total", topic_labels)] >= value_bytes
    log_bytes = _sum(samples, "kafka_log_log_size", topic=topic)
    assert samples[("kafka_server_brokertopicmetrics_bytesin_total", topic_labels)] == log_bytes
    assert samples[("kafka_server_brokertopicmetrics_bytesout_total", topic_labels)] >= log_bytes

    apis = [frozenset({("request", r)}) for r in ("Produce", "Fetch", "Metadata", "JoinGroup", "SyncGroup",
                                                     "OffsetCommit", "FindCoordinator")]
    assert all(samples[("kafka_network_requestmetrics_requests_total", api)] >= 1 for api in apis)

    def timed(s: Samples) -> Samples | None:
        """Every request answered has all six times, the last three once its response is written."""
        return s if all(s.get((f"kafka_network_requestmetrics_{kind}_seconds_count", api))
                        == s[("kafka_network_requestmetrics_requests_total", api)]
                        for api in apis for kind in REQUEST_TIMES) else None

    times = wait_for(lambda: timed(endpoint.scrape()), what="every request's times counted")
    produce = frozenset({("request", "Produce")})
    send, total = (times[(f"kafka_network_requestmetrics_{kind}_seconds_sum", produce)]
                   for kind in ("responsesendtime", "totaltime"))
    assert 0 < send < total
    assert total >= sum(times[(f"kafka_network_requestmetrics_{kind}_seconds_sum", produce)]
                        for kind in REQUEST_TIMES[1:]) * 0.999  # the parts of the total (float sums)
    assert _sum(samples, "kafka_coordinator_group_groupmetadatamanager_numgroups") >= 1
    assert all(_sum(samples, "pyk_shard_cpu_seconds_total", shard=s) > 0 for s in (0, 1))
    assert all(_sum(samples, "pyk_shard_event_loop_lag_seconds_count", shard=s) > 0 for s in (0, 1))
    # A single host leads every partition it holds, as their one replica (min.insync.replicas=1).
    leaders = samples[("kafka_server_replicamanager_leadercount", frozenset())]
    assert leaders == samples[("kafka_server_replicamanager_partitioncount", frozenset())] >= 2
    assert samples[("kafka_server_replicamanager_atminisrpartitioncount", frozenset())] == leaders
    assert samples[("kafka_server_replicamanager_underreplicatedpartitions", frozenset())] == 0
    assert samples[("kafka_server_replicamanager_underminisrpartitioncount", frozenset())] == 0
    assert samples[("kafka_controller_kafkacontroller_activecontrollercount", frozenset())] == 1


def test_errors_connections_and_fetch_purgatory(served, topic) -> None:
    broker, endpoint = served
    create_topic(broker.bootstrap, topic)
    admin = confluent_admin(broker.bootstrap)
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], operation_timeout=10)
    with pytest.raises(Exception, match="already exists"):
        futures[topic].result(timeout=20)
    key = ("kafka_network_requestmetrics_errors_total",
           frozenset({("request", "CreateTopics"), ("error", "TOPIC_ALREADY_EXISTS")}))
    assert wait_for(lambda: endpoint.scrape().get(key), what="the CreateTopics error counted") >= 1

    # A consumer long-polling an empty partition waits in the Fetch purgatory, on an open connection.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                         "fetch.wait.max.ms": 5000, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])

        def parked() -> Samples | None:
            consumer.poll(0.1)
            samples = endpoint.scrape()
            waiting = samples[("kafka_server_delayedoperationpurgatory_purgatorysize",
                               frozenset({("delayedoperation", "Fetch")}))]
            return samples if waiting >= 1 else None

        samples = wait_for(parked, timeout=30, what="a fetch in the purgatory")
        assert _sum(samples, "kafka_server_socket_server_metrics_connection_count") >= 1
    finally:
        consumer.close()


def test_group_commit_fsync_and_retention(served, topic) -> None:
    broker, endpoint = served
    create_topic(broker.bootstrap, topic, config={"flush.messages": "1", "segment.bytes": "1024",
                                                  "retention.bytes": "1024"})
    for _ in range(8):  # a batch (of ~1 KiB) per call: each rolls a segment
        confluent_produce(broker.bootstrap, topic, make_records(5, value_size=200))
    labels = frozenset({("topic", topic), ("partition", "0")})

    def trimmed() -> Samples | None:
        samples = endpoint.scrape()
        return samples if samples.get(("kafka_log_log_logstartoffset", labels), 0) > 0 else None

    samples = wait_for(trimmed, timeout=30, what="retention moving the log start offset")
    assert _sum(samples, "pyk_log_retention_segments_deleted_total") >= 1
    assert samples[("kafka_log_logflushstats_logflush_seconds_count", frozenset())] >= 1
    assert samples[("kafka_log_logflushstats_logflush_seconds_sum", frozenset())] > 0


def test_a_taken_metrics_listener_stops_start_up(served, broker_factory) -> None:
    from tests.helpers import BrokerStartError

    _, endpoint = served
    second = broker_factory(start=False, overrides={"metrics.listener": endpoint.base.removeprefix("http://")})
    with pytest.raises(BrokerStartError, match="exited with code 1"):
        second.start()
    assert "cannot serve metrics.listener=127.0.0.1:" in second.log_file.read_text()
    assert endpoint.get("/health") == (200, "ok\n")  # the first broker's endpoint still answers


def test_cleaner_metrics_after_a_compaction_pass(broker_factory, topic) -> None:
    """A compacted topic with small segments: once a pass cleaned it, the pass count, the share
    of the bytes read that were written back (some versions dropped, the latest kept) and the
    pass's duration are exported."""
    port = free_port()
    broker = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}", "log.cleaner.backoff.ms": 200})
    endpoint = Endpoint(port)
    create_topic(broker.bootstrap, topic, config={"cleanup.policy": "compact", "segment.bytes": "2048",
                                                  "min.cleanable.dirty.ratio": "0.01"})
    for version in range(6):  # a batch of every key per call: each version rolls a segment
        confluent_produce(broker.bootstrap, topic, make_records(8, value_size=200, prefix=f"v{version}"))

    def cleaned() -> Samples | None:
        samples = endpoint.scrape()
        return samples if _sum(samples, "pyk_log_cleaner_passes_total") >= 1 else None

    samples = wait_for(cleaned, timeout=60, what="a compaction pass")
    [cleaning] = [labels for (name, labels), v in samples.items() if name == "pyk_log_cleaner_passes_total" and v]
    assert 0 < samples[("kafka_log_logcleaner_cleaner_recopy_percent", cleaning)] < 100
    assert samples[("kafka_log_logcleaner_max_clean_time_secs", frozenset())] > 0


def test_produce_purgatory_holds_acks_all_answers_waiting_for_their_fsync(served, topic) -> None:
    """acks=all producers on a flush.messages=1 topic wait for their group commit's fdatasync:
    Kafka's Produce purgatory, seen while they produce."""
    from confluent_kafka import Producer

    broker, endpoint = served
    create_topic(broker.bootstrap, topic, partitions=2, config={"flush.messages": "1"})
    producers = [Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0}) for _ in range(4)]
    key = ("kafka_server_delayedoperationpurgatory_purgatorysize", frozenset({("delayedoperation", "Produce")}))

    def waiting() -> float:
        for i, producer in enumerate(producers):
            for n in range(50):
                producer.produce(topic, b"x" * 100, partition=(i + n) % 2)
            producer.poll(0)
        return endpoint.scrape()[key]

    try:
        assert wait_for(waiting, timeout=60, interval=0.01, what="a produce waiting for its fsync") >= 1
    finally:
        for producer in producers:
            assert producer.flush(30) == 0
    wait_for(lambda: endpoint.scrape()[key] == 0, what="no produce waiting once every answer is out")
