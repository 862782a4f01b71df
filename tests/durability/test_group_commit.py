"""Group commit under flush.messages=1 (fsync-per-ack durability), on whichever engine the run uses
(PYK_TEST_ENGINE): every acknowledged record survives kill -9, and concurrent producers share
their fdatasyncs instead of paying one each.

The broker's clean shutdown logs, per shard, `group commit: F flushes (S fdatasyncs) answered W
waiting requests`; the sharing test reads those numbers back.
"""

from __future__ import annotations

import re
import threading

from confluent_kafka import Producer

from tests.durability.test_kill9 import PARTITIONS, StreamingProducer, _check_partition
from tests.helpers import create_topic, unique_topic, wait_for

PRODUCERS = 4
STATS = re.compile(r"group commit: (\d+) flushes \((\d+) fdatasyncs\) answered (\d+) waiting requests")


def test_kill9_keeps_every_record_acked_under_flush_messages_1(broker_factory):
    b = broker_factory(log_flush_interval_messages=1, log_segment_bytes=256 * 1024)
    topic = unique_topic("group-commit-kill9")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    conf = {"acks": -1, "linger.ms": 1, "retries": 0, "message.timeout.ms": 10000}
    streams = [StreamingProducer(b.bootstrap, topic, conf) for _ in range(PRODUCERS)]
    for s in streams:
        s.start()
    try:
        wait_for(lambda: sum(s.acked_count() for s in streams) >= 5_000, timeout=90, what="5000 acknowledged records")
        b.kill9()
    finally:
        for s in streams:
            s.finish(purge=True, timeout=10)
    acked: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
    for s in streams:
        for p, records in s.acked.items():
            acked[p].update(records)
    b.start()
    for p in range(PARTITIONS):
        _check_partition(b.bootstrap, topic, p, acked[p])


def _produce_one_at_a_time(bootstrap: str, topic: str, count: int, errors: list[str]) -> None:
    """`count` records, each waited for before the next: every record is its own request."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": -1, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, value=b"v%d" % i, partition=i % PARTITIONS,
                         on_delivery=lambda err, _msg: err is None or errors.append(str(err)))
        producer.flush(10)


def test_concurrent_producers_share_fdatasyncs(broker_factory):
    """Sixteen producers, one record per request: with flush.messages=1 each request waits for a
    flush, yet the broker runs far fewer fdatasyncs than it answers requests."""
    b = broker_factory(log_flush_interval_messages=1)
    topic = unique_topic("group-commit-share")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    errors: list[str] = []
    per_producer, producers = 100, 16
    threads = [threading.Thread(target=_produce_one_at_a_time, args=(b.bootstrap, topic, per_producer, errors))
               for _ in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    assert b.stop() == 0
    stats = [tuple(map(int, m)) for m in STATS.findall(b.log_text())]
    assert len(stats) == b.shards, f"expected one group-commit line per shard, found {stats}"
    fdatasyncs = sum(s[1] for s in stats)
    waiting = sum(s[2] for s in stats)
    assert waiting >= producers * per_producer, f"only {waiting} produce requests waited for a flush"
    assert fdatasyncs * 2 <= waiting, f"{fdatasyncs} fdatasyncs for {waiting} acknowledged requests: not shared"


def test_transaction_markers_wait_for_the_group_commit(broker_factory):
    """flush.messages=1: the commit markers, like the produce requests, are answered only after
    a group commit synced them (the coordinator then counts the transaction complete)."""
    from tests.transactions.helpers import read_all, txn_producer

    b = broker_factory(log_flush_interval_messages=1)
    topic = unique_topic("group-commit-markers")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    p = txn_producer(b.bootstrap, "gc-markers")
    p.begin_transaction()
    for partition in range(PARTITIONS):
        p.produce(topic, value=b"v%d" % partition, partition=partition)
    p.flush(10)
    p.commit_transaction(30)
    seen = read_all(b.bootstrap, topic, PARTITIONS, "read_committed", expect=PARTITIONS)
    assert sorted(v for records in seen.values() for _, v in records) == [b"v%d" % i for i in range(PARTITIONS)]
    assert b.stop() == 0
    waiting = sum(int(m[2]) for m in STATS.findall(b.log_text()))
    # One wait per partition for the data, one per partition for its COMMIT marker.
    assert waiting >= 2 * PARTITIONS, f"{waiting} waits: the markers did not wait for a flush"
