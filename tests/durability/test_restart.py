"""A clean restart (SIGTERM, then start on the same directory and port) keeps everything.

Data and offsets of every partition, the log start offset moved by DeleteRecords, the timestamp
index, topic configs, deleted topics staying deleted, and the clean-shutdown marker lifecycle.
"""

from __future__ import annotations

import time

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from tests.helpers import (
    Rec,
    confluent_admin,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    make_records,
    unique_topic,
    wait_for,
)

CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"  # Kafka's name (LogManager), kept by pyk
N = 40


def test_clean_restart_keeps_data_offsets_and_configs(broker_factory):
    b = broker_factory()
    topic, gone = unique_topic("restart"), unique_topic("restart-deleted")
    create_topic(
        b.bootstrap, topic, partitions=3, config={"retention.ms": "86400000", "max.message.bytes": "2000000"}
    )
    create_topic(b.bootstrap, gone)
    ts0 = int(time.time() * 1000) - 600_000
    sent = {p: [Rec(r.key, r.value, r.headers, ts0 + i * 100, p) for i, r in enumerate(make_records(N, prefix=f"p{p}"))]
            for p in range(3)}  # fmt: skip
    for p in range(3):
        assert confluent_produce(b.bootstrap, topic, sent[p]) == [(p, i) for i in range(N)]
    admin = confluent_admin(b.bootstrap)
    tp = TopicPartition(topic, 1, 10)
    assert admin.delete_records([tp])[tp].result(20).low_watermark == 10
    admin.delete_topics([gone])[gone].result(20)

    assert b.stop() == 0, b.log_tail()
    assert all((d / CLEAN_SHUTDOWN_MARKER).exists() for d in b.shard_dirs()), (
        "no clean-shutdown marker after SIGTERM"
    )
    b.start()
    assert not any((d / CLEAN_SHUTDOWN_MARKER).exists() for d in b.shard_dirs()), (
        "marker must go once the logs are loaded"
    )

    for p in range(3):
        low = 10 if p == 1 else 0
        assert confluent_watermarks(b.bootstrap, topic, p) == (low, N), f"partition {p}"
        got = confluent_consume(b.bootstrap, topic, p, low, N - low)
        assert [r.offset for r in got] == list(range(low, N))
        assert [r.content() for r in got] == [r.content() for r in sent[p][low:]]
        assert [r.timestamp for r in got] == [r.timestamp for r in sent[p][low:]]
    c = confluent_consumer(b.bootstrap)
    try:
        (found,) = c.offsets_for_times([TopicPartition(topic, 0, ts0 + 1250)], timeout=10)
        assert found.offset == 13
    finally:
        c.close()

    md = admin.list_topics(timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert gone not in md.topics or md.topics[gone].error is not None
    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(20)
    assert configs["retention.ms"].value == "86400000"
    assert configs["max.message.bytes"].value == "2000000"

    # Appends continue where the log ended.
    assert confluent_produce(b.bootstrap, topic, make_records(2, partition=2)) == [(2, N), (2, N + 1)]


def test_restart_twice_and_keep_appending(broker_factory, topic):
    b = broker_factory()
    expected: list[bytes] = []
    for round_ in range(3):
        recs = make_records(10, prefix=f"round{round_}")
        assert confluent_produce(b.bootstrap, topic, recs) == [(0, 10 * round_ + i) for i in range(10)]
        expected += [r.value for r in recs]
        b.restart()
    got = confluent_consume(b.bootstrap, topic, 0, 0, 30)
    assert [r.value for r in got] == expected
    assert [r.offset for r in got] == list(range(30))


def test_sigterm_with_parked_consumer_and_open_connections(broker_factory, topic):
    """Clean stop while a consumer waits in a long poll and a producer holds a connection."""
    from confluent_kafka import Producer

    b = broker_factory()
    confluent_produce(b.bootstrap, topic, make_records(3))
    c = confluent_consumer(b.bootstrap, **{"fetch.wait.max.ms": 10000})
    p = Producer({"bootstrap.servers": b.bootstrap})
    try:
        c.assign([TopicPartition(topic, 0, 3)])
        c.consume(num_messages=1, timeout=1.0)
        p.list_topics(timeout=10)
        started = time.monotonic()
        assert b.stop() == 0, b.log_tail()
        assert time.monotonic() - started < 15, "stop waited for the long poll to expire"
    finally:
        c.close()
        p.flush(0)
    b.start()
    wait_for(lambda: confluent_watermarks(b.bootstrap, topic) == (0, 3), what="3 records after restart")
