"""Log compaction of transactional data against a real `pyk serve`: a compacted topic written by
committed and aborted transactions (librdkafka's transactional producer) compacts to exactly the
committed latest-per-key table for a read_committed consumer reading from the beginning, and
the aborted records leave the log; `__consumer_offsets` written by committed and aborted
TxnOffsetCommits (kafka-python's send_offsets_to_transaction) keeps the last committed offset
through compaction and a restart.  Before the cleaner knew about transactions, an aborted later
value of a key made it delete the committed earlier one."""

from __future__ import annotations

import re

from confluent_kafka import Producer

from pyk import _native
from tests.helpers import confluent_consumer, confluent_read_to_end, create_topic, unique_topic, wait_for
from tests.transactions.helpers import describe, txn_producer

FILLER = b"filler"
KEYS = 20


def read_records(bootstrap: str, topic: str, isolation: str) -> list[tuple[int, bytes, bytes | None]]:
    """(offset, key, value) of every record a consumer with `isolation` reads from the start
    of partition 0 up to its end."""
    return [(r.offset, r.key, r.value)
            for r in confluent_read_to_end(bootstrap, topic, **{"isolation.level": isolation})]


def latest_per_key(records: list[tuple[int, bytes, bytes | None]]) -> dict[bytes, bytes | None]:
    table: dict[bytes, bytes | None] = {}
    for _, key, value in records:
        if key != FILLER:
            table[key] = value
    return table


def filler(bootstrap: str, topic: str) -> None:
    """One plain record: after segment.ms it rolls the active segment, so everything before it
    becomes cleanable."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    p.produce(topic, key=FILLER, value=b"x", partition=0)
    assert p.flush(30) == 0


def control_batches(partition_dir: object) -> int:
    """Transaction markers in the partition's segment files."""
    count = 0
    for path in sorted(partition_dir.glob("*.log")):  # type: ignore[attr-defined]
        raw = path.read_bytes()
        pos = 0
        while pos + 61 <= len(raw):
            info = _native.batch_info(raw, pos)
            count += info.is_control
            pos += info.size
    return count


def test_compacted_topic_keeps_exactly_the_committed_table(broker_factory):
    b = broker_factory(log_cleaner_backoff_ms=200)
    topic = unique_topic("txn-compact")
    create_topic(b.bootstrap, topic, 1, {"cleanup.policy": "compact", "segment.bytes": "4096",
                                         "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
                                         "delete.retention.ms": "2000"})
    p = txn_producer(b.bootstrap, f"{topic}-tx")
    expected: dict[bytes, bytes | None] = {}
    aborted_values: set[bytes] = set()
    for round_ in range(12):
        commit = round_ % 3 != 2
        p.begin_transaction()
        batch = {}
        for k in range(KEYS):
            if (k + round_) % 2 == 0:
                continue  # each transaction writes half the keys
            value = b"r%d-k%d-%s" % (round_, k, b"c" if commit else b"a")
            p.produce(topic, key=b"k%d" % k, value=value, partition=0)
            batch[b"k%d" % k] = value
        if round_ == 4:
            p.produce(topic, key=b"k1", value=None, partition=0)  # a committed tombstone
            batch[b"k1"] = None
        p.flush(30)
        if commit:
            p.commit_transaction(30)
            expected.update(batch)
        else:
            p.abort_transaction(30)
            aborted_values.update(v for v in batch.values() if v is not None)
    # The last transaction aborts: its values are the latest of their keys in the log.
    p.begin_transaction()
    for k in range(KEYS):
        value = b"last-k%d-a" % k
        p.produce(topic, key=b"k%d" % k, value=value, partition=0)
        aborted_values.add(value)
    p.flush(30)
    p.abort_transaction(30)
    expected_live = {k: v for k, v in expected.items() if v is not None}
    assert latest_per_key(read_records(b.bootstrap, topic, "read_committed")) == expected

    def cleaned() -> bool:
        filler(b.bootstrap, topic)
        uncommitted = read_records(b.bootstrap, topic, "read_uncommitted")
        data = [r for r in uncommitted if r[1] != FILLER]
        # Cleaned: no aborted record and no superseded version is left in the log.
        return not [r for r in data if r[2] in aborted_values] and len(data) == len({r[1] for r in data})

    wait_for(cleaned, timeout=60, interval=0.3, what="aborted records cleaned away")
    assert "cleaned " + topic in b.log_text()
    table = latest_per_key(read_records(b.bootstrap, topic, "read_committed"))
    assert {k: v for k, v in table.items() if v is not None} == expected_live
    assert set(table) - set(expected_live) <= {b"k1"}  # the tombstone, until delete.retention.ms
    # Markers of transactions with nothing left in the log go after delete.retention.ms (2 s);
    # the read_committed table does not change.
    markers = control_batches(b.partition_dir(topic, 0))
    assert markers >= 12
    wait_for(lambda: filler(b.bootstrap, topic) or control_batches(b.partition_dir(topic, 0)) < markers - 3,
             timeout=60, interval=0.5, what="markers removed after their delete horizon")
    table = latest_per_key(read_records(b.bootstrap, topic, "read_committed"))
    assert {k: v for k, v in table.items() if v is not None} == expected_live
    # And after a restart the same.
    b.restart()
    table = latest_per_key(read_records(b.bootstrap, topic, "read_committed"))
    assert {k: v for k, v in table.items() if v is not None} == expected_live


def _committed_offset(bootstrap: str, group: str, topic: str) -> int:
    from confluent_kafka import TopicPartition

    c = confluent_consumer(bootstrap, **{"group.id": group})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=20)[0].offset
    finally:
        c.close()


def _cleaned_up_to(log_text: str, topic_partition: str) -> int:
    """The highest end offset of the cleaner passes over `topic_partition` in the broker log."""
    ends = [int(m) for m in re.findall(r"cleaned " + re.escape(topic_partition) + r" \[\d+, (\d+)\)", log_text)]
    return max(ends, default=-1)


def test_aborted_txn_offset_commit_then_compaction_and_restart(broker_factory):
    """The group's committed offset after committed TxnOffsetCommits, an aborted one last, then
    compaction of __consumer_offsets and a restart, is the last committed one."""
    from confluent_kafka import TopicPartition as CTopicPartition
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    b = broker_factory(num_shards=1, log_cleaner_backoff_ms=200, log_cleaner_min_cleanable_ratio=0.01,
                       offsets_topic_num_partitions=1, offsets_topic_segment_bytes=4096,
                       transaction_state_log_num_partitions=1, transaction_state_log_segment_bytes=4096)
    topic = unique_topic("txn-offsets")
    out = topic + "-out"
    create_topic(b.bootstrap, topic, 1)
    create_topic(b.bootstrap, out, 1)
    tid, group = f"{topic}-tx", f"{topic}-g"
    p = KafkaProducer(bootstrap_servers=b.bootstrap, transactional_id=tid, request_timeout_ms=20000)
    try:
        p.init_transactions()
        for i in range(1, 21):
            p.begin_transaction()
            p.send(out, value=b"out%d" % i, partition=0)
            p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(i, "", -1)}, group)
            p.commit_transaction()
        last_committed = 20
        p.begin_transaction()
        p.send(out, value=b"aborted", partition=0)
        p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(999, "", -1)}, group)
        p.flush()
        p.abort_transaction()
    finally:
        p.close(timeout=10)
    assert wait_for(lambda: describe(b.bootstrap, tid)["transaction_state"] == "CompleteAbort", timeout=20)
    assert _committed_offset(b.bootstrap, group, topic) == last_committed
    c = confluent_consumer(b.bootstrap)
    try:
        _, aborted_end = c.get_watermark_offsets(CTopicPartition("__consumer_offsets", 0), timeout=10, cached=False)
    finally:
        c.close()
    # Plain commits of another group roll __consumer_offsets' 4 KiB segments past the abort
    # marker and keep the dirty ratio up, until a pass covers the aborted commit.
    other = confluent_consumer(b.bootstrap, **{"group.id": group + "-other"})
    try:
        def covered() -> bool:
            for i in range(20):
                other.commit(offsets=[CTopicPartition(out, 0, i + 1)], asynchronous=False)
            return _cleaned_up_to(b.log_text(), "__consumer_offsets-0") >= aborted_end

        wait_for(covered, timeout=60, interval=0.2, what="a cleaner pass past the aborted TxnOffsetCommit")
    finally:
        other.close()
    assert _committed_offset(b.bootstrap, group, topic) == last_committed
    # __transaction_state (plain batches, compacted) was cleaned too; the id's state survives.
    wait_for(lambda: _cleaned_up_to(b.log_text(), "__transaction_state-0") > 0, timeout=60,
             what="__transaction_state cleaned")
    b.restart()
    assert _committed_offset(b.bootstrap, group, topic) == last_committed
    assert describe(b.bootstrap, tid)["transaction_state"] == "CompleteAbort"
    # The same transactional id carries on after the restart, and its commit counts.
    p = KafkaProducer(bootstrap_servers=b.bootstrap, transactional_id=tid, request_timeout_ms=20000)
    try:
        p.init_transactions()
        p.begin_transaction()
        p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(21, "", -1)}, group)
        p.commit_transaction()
    finally:
        p.close(timeout=10)
    assert wait_for(lambda: _committed_offset(b.bootstrap, group, topic) == 21, timeout=20)
