"""Exactly-once with confluent-kafka (librdkafka's transactional producer) against `pyk serve`
with 2 shards, so partitions and the transaction coordinator sit on different nodes and markers
cross shards (pyk/coordinator/transaction_markers.py).

Commit: every write of the transaction, across partitions and topics, becomes visible to
read_committed consumers at once; abort: none does; read_uncommitted sees both, and the markers
take an offset each (gaps in what consumers see).  Fencing: a second instance with the same
transactional.id fences the first, whose open transaction is aborted.  Timeout: a transaction
left open past transaction.timeout.ms is aborted by the coordinator and the LSO advances.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import confluent_consumer, create_topic, wait_for
from tests.transactions.helpers import describe, read_all, txn_producer, values

PARTITIONS = 4


def test_commit_is_atomic_across_partitions_and_topics(broker, topic):
    other = topic + "-b"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    create_topic(broker.bootstrap, other, 1)
    p = txn_producer(broker.bootstrap, f"{topic}-tx")
    p.begin_transaction()
    for i in range(40):
        p.produce(topic, value=b"c%d" % i, partition=i % PARTITIONS)
    p.produce(other, value=b"other")
    p.flush(10)
    # Written and acknowledged, not committed: invisible to read_committed, visible otherwise.
    assert values(read_all(broker.bootstrap, topic, PARTITIONS, "read_committed")) == set()
    assert len(values(read_all(broker.bootstrap, topic, PARTITIONS, "read_uncommitted", expect=40))) == 40
    state = describe(broker.bootstrap, f"{topic}-tx")
    assert state["transaction_state"] == "Ongoing"
    assert {t["topic"]: t["partitions"] for t in state["topics"]} == {topic: [0, 1, 2, 3], other: [0]}
    p.commit_transaction(30)
    committed = read_all(broker.bootstrap, topic, PARTITIONS, "read_committed", expect=40)
    assert values(committed) == {b"c%d" % i for i in range(40)}
    assert values(read_all(broker.bootstrap, other, 1, "read_committed", expect=1)) == {b"other"}
    assert wait_for(lambda: describe(broker.bootstrap, f"{topic}-tx")["transaction_state"] == "CompleteCommit")


def test_abort_hides_everything_read_uncommitted_sees_both(broker, topic):
    create_topic(broker.bootstrap, topic, PARTITIONS)
    p = txn_producer(broker.bootstrap, f"{topic}-tx")
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, value=b"aborted%d" % i, partition=i % PARTITIONS)
    p.flush(10)  # written before the abort (librdkafka purges what it has not sent yet)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, value=b"kept%d" % i, partition=i % PARTITIONS)
    p.commit_transaction(30)
    committed = read_all(broker.bootstrap, topic, PARTITIONS, "read_committed", expect=20)
    assert values(committed) == {b"kept%d" % i for i in range(20)}
    uncommitted = read_all(broker.bootstrap, topic, PARTITIONS, "read_uncommitted", expect=40)
    assert values(uncommitted) == {b"kept%d" % i for i in range(20)} | {b"aborted%d" % i for i in range(20)}
    for part, recs in uncommitted.items():
        # 5 aborted records, the abort marker, 5 committed ones, the commit marker: the markers
        # occupy offsets 5 and 11 and are never delivered.
        assert [o for o, _ in recs] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10], part
    c = confluent_consumer(broker.bootstrap, **{"isolation.level": "read_committed"})
    try:
        from confluent_kafka import TopicPartition

        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 12)
    finally:
        c.close()


def test_new_instance_fences_the_zombie_and_aborts_its_transaction(broker, topic):
    from confluent_kafka import KafkaException

    create_topic(broker.bootstrap, topic, PARTITIONS)
    zombie = txn_producer(broker.bootstrap, f"{topic}-tx")
    zombie.begin_transaction()
    for i in range(8):
        zombie.produce(topic, value=b"zombie%d" % i, partition=i % PARTITIONS)
    zombie.flush(10)
    first = describe(broker.bootstrap, f"{topic}-tx")
    fresh = txn_producer(broker.bootstrap, f"{topic}-tx")  # aborts the zombie's transaction, bumps the epoch twice
    state = describe(broker.bootstrap, f"{topic}-tx")
    assert (state["producer_id"], state["producer_epoch"]) == (first["producer_id"], first["producer_epoch"] + 2)
    with pytest.raises(KafkaException) as info:
        zombie.produce(topic, value=b"late", partition=0)
        zombie.commit_transaction(10)
    assert info.value.args[0].fatal() or info.value.args[0].txn_requires_abort()
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh", partition=0)
    fresh.commit_transaction(30)
    assert values(read_all(broker.bootstrap, topic, PARTITIONS, "read_committed", expect=1)) == {b"fresh"}


def test_open_transaction_times_out_and_the_lso_advances(broker_factory, topic):
    from confluent_kafka import KafkaException, TopicPartition

    b = broker_factory(transaction_abort_timed_out_transaction_cleanup_interval_ms=200)
    create_topic(b.bootstrap, topic, PARTITIONS)
    p = txn_producer(b.bootstrap, f"{topic}-tx", **{"transaction.timeout.ms": 1500})
    p.begin_transaction()
    for i in range(8):
        p.produce(topic, value=b"forgotten%d" % i, partition=i % PARTITIONS)
    p.flush(10)
    c = confluent_consumer(b.bootstrap, **{"isolation.level": "read_committed"})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)  # LSO held
        started = time.monotonic()
        wait_for(lambda: describe(b.bootstrap, f"{topic}-tx")["transaction_state"] == "CompleteAbort", timeout=15)
        assert time.monotonic() - started < 10
        # Aborted: the marker follows the two records; the LSO is the end of the log again.
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 3)
    finally:
        c.close()
    assert values(read_all(b.bootstrap, topic, PARTITIONS, "read_committed")) == set()
    with pytest.raises(KafkaException):  # its epoch was bumped: the producer learns it is fenced
        p.commit_transaction(10)
