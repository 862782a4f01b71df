"""Log compaction against a real `pyk serve`, with real clients: the compacted table a consumer
reads from the beginning, tombstones expiring after delete.retention.ms, keyless records
rejected, a runtime switch to cleanup.policy=compact, and produce/consume going on while the
cleaner rewrites another partition."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, Producer

from tests.helpers import (
    Rec,
    confluent_admin,
    confluent_consume,
    confluent_consumer,
    confluent_read_to_end,
    create_topic,
    unique_topic,
    wait_for,
)

KEYS = 100
VERSIONS = 100
TOMBSTONED = 10
FILLER = b"filler"


def compact_topic(bootstrap: str, topic: str, **extra: str) -> None:
    config = {"cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "1000",
              "min.cleanable.dirty.ratio": "0.01"}
    config.update(extra)
    create_topic(bootstrap, topic, 1, config)


def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None]], **conf: object) -> list[int]:
    """Produces (key, value) pairs in order; returns their offsets."""
    offsets: list[int] = [-1] * len(items)
    errors: list[str] = []
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", **conf})

    def cb(i: int):
        def done(err, msg) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                offsets[i] = msg.offset()
        return done

    for i, (key, value) in enumerate(items):
        while True:
            try:
                p.produce(topic, key=key, value=value, partition=0, on_delivery=cb(i))
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0
    assert not errors, errors[:3]
    return offsets


def read_table(bootstrap: str, topic: str) -> tuple[list[Rec], dict[bytes, tuple[int, bytes | None]]]:
    """Every record from the beginning up to the end of the partition (a compacted log has
    fewer records than offsets), and the table a consumer builds from them."""
    recs = confluent_read_to_end(bootstrap, topic)
    table = {}
    for r in recs:
        table[r.key] = (r.offset, r.value)
    return recs, table


def test_compaction_builds_the_final_table(broker_factory):
    b = broker_factory(log_cleaner_backoff_ms=200)
    topic = unique_topic("compact")
    compact_topic(b.bootstrap, topic, **{"delete.retention.ms": "3000"})
    items = [(b"k%d" % k, b"v%d-%d" % (k, v)) for v in range(VERSIONS) for k in range(KEYS)]
    offsets = produce(b.bootstrap, topic, items)
    latest = {key: (offsets[i], value) for i, (key, value) in enumerate(items)}
    tomb_offsets = produce(b.bootstrap, topic, [(b"k%d" % k, None) for k in range(TOMBSTONED)])
    for k, off in zip(range(TOMBSTONED), tomb_offsets, strict=True):
        latest[b"k%d" % k] = (off, None)
    expected_live = {k: v for k, v in latest.items() if v[1] is not None}

    def compacted(require_tombstones_gone: bool):
        # Filler records roll the active segment (segment.ms=1000) so every record above becomes
        # cleanable; the filler key itself is not part of the checked table.
        produce(b.bootstrap, topic, [(FILLER, b"x")])
        recs, table = read_table(b.bootstrap, topic)
        data = [r for r in recs if r.key != FILLER]
        if len(data) != len({r.key for r in data}):
            return None  # superseded versions still there
        table.pop(FILLER, None)
        live = {k: v for k, v in table.items() if v[1] is not None}
        tombs = {k for k, v in table.items() if v[1] is None}
        if live != expected_live:
            return None
        if require_tombstones_gone and tombs:
            return None
        return tombs

    seen: dict[str, set[bytes]] = {}

    def observed() -> bool:
        tombs = compacted(False)
        if tombs is not None:
            seen["tombstones"] = tombs
        return tombs is not None

    wait_for(observed, timeout=60, interval=0.1, what="compacted table")
    compacted_at = time.monotonic()
    seen_tombstones = seen["tombstones"]
    # Every key's latest value at its original offset, older versions gone; the deletes are
    # still readable right after cleaning (delete.retention.ms = 3 s).
    assert seen_tombstones == {b"k%d" % k for k in range(TOMBSTONED)}
    wait_for(lambda: compacted(True) is not None, timeout=60, interval=0.1, what="tombstones removed")
    assert time.monotonic() - compacted_at >= 2.0  # not before delete.retention.ms (minus polling slack)
    _, table = read_table(b.bootstrap, topic)
    table.pop(FILLER, None)
    assert table == expected_live


def test_keyless_records_are_rejected(broker_factory):
    b = broker_factory()
    topic = unique_topic("compact-nokey")
    compact_topic(b.bootstrap, topic)
    errors: list = []
    p = Producer({"bootstrap.servers": b.bootstrap, "retries": 0})
    p.produce(topic, value=b"no key", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors and errors[0] is not None and errors[0].name() == "INVALID_RECORD"


def test_switching_to_compact_at_runtime(broker_factory):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    b = broker_factory(num_shards=1, log_cleaner_backoff_ms=200, log_level="DEBUG")
    topic = unique_topic("to-compact")
    create_topic(b.bootstrap, topic, 1, {"segment.bytes": "16384", "segment.ms": "1000",
                                         "min.cleanable.dirty.ratio": "0.01"})
    items = [(b"k%d" % (i % 20), b"v%d" % i) for i in range(3000)]
    produce(b.bootstrap, topic, items)
    # A cleaner pass that began after the last append found nothing to clean: under the delete
    # policy the topic is not the cleaner's (one shard, so that pass saw this partition).
    idle = b.log_text().count("cleaner pass: nothing to clean")
    wait_for(lambda: b.log_text().count("cleaner pass: nothing to clean") > idle, timeout=30,
             what="a cleaner pass after the produce")
    assert len(read_table(b.bootstrap, topic)[0]) == 3000  # delete policy: nothing compacted
    admin = confluent_admin(b.bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(20)

    def done():
        produce(b.bootstrap, topic, [(FILLER, b"x")])
        recs, table = read_table(b.bootstrap, topic)
        return len([r for r in recs if r.key != FILLER]) == 20

    wait_for(done, timeout=60, interval=0.3, what="compaction after the policy change")


def test_produce_and_fetch_keep_going_while_cleaning(broker_factory):
    """One shard: the cleaner thread works on `big` while a producer and a consumer use `other`.
    Bound stated here: no produce takes longer than 1 s while a pass runs (the swap and the
    plan are the only cleaner work on the event loop)."""
    b = broker_factory(num_shards=1, log_cleaner_backoff_ms=100)
    big, other = unique_topic("big"), unique_topic("other")
    # Nothing of `big` is cleanable (min.compaction.lag.ms) until the alter below: a pass that ran
    # during the produce would leave nothing for the measured window.
    compact_topic(b.bootstrap, big, **{"segment.bytes": "1048576", "min.compaction.lag.ms": "3600000"})
    create_topic(b.bootstrap, other, 1)
    value = b"x" * 200
    produce(b.bootstrap, big, [(b"key-%d" % (i % 5000), value) for i in range(60000)],
            **{"linger.ms": 20, "batch.num.messages": 2000})
    # Drop the lag: the whole 13 MB log becomes cleanable at once.
    admin = confluent_admin(b.bootstrap)
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    resource = ConfigResource(ConfigResource.Type.TOPIC, big, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "acks": "1"})
    p.produce(other, value=b"warm-up", partition=0)
    p.flush(10)
    before = b.log_text().count(f"cleaned {big}-0")
    admin.incremental_alter_configs([resource])[resource].result(20)
    latencies = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b.log_text().count(f"cleaned {big}-0") == before:
        start = time.monotonic()
        p.produce(other, value=b"during", partition=0)
        assert p.flush(10) == 0
        latencies.append(time.monotonic() - start)
    assert b.log_text().count(f"cleaned {big}-0") > before, "no cleaning pass finished"
    assert len(latencies) > 10
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"produce latency while cleaning: n={len(latencies)} p50={latencies[len(latencies) // 2] * 1000:.1f} ms "
          f"p99={p99 * 1000:.1f} ms max={latencies[-1] * 1000:.1f} ms")
    assert latencies[-1] < 1.0
    recs = confluent_consume(b.bootstrap, other, start=0, count=len(latencies) + 1, timeout=10)
    assert len(recs) == len(latencies) + 1


@pytest.mark.parametrize("step", ["cleaned", "swap", "delete", "live"])
def test_kill_during_a_segment_swap(broker_factory, monkeypatch, step):
    """The cleaner's process exits (os._exit, as kill -9) at one step of the swap; after a
    restart the log is consistent and every key's latest value is at its acknowledged offset."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    monkeypatch.setenv("PYK_CLEANER_CRASH_AT", step)
    b = broker_factory(num_shards=1, log_cleaner_backoff_ms=100)
    topic = unique_topic(f"crash-{step}")
    # Nothing is cleanable (min.compaction.lag.ms) until every record is acknowledged, so the
    # crash can never cut the produce short, however slow a loaded machine makes it.
    compact_topic(b.bootstrap, topic, **{"min.compaction.lag.ms": "3600000"})
    items = [(b"k%d" % (i % 50), b"v%d" % i) for i in range(4000)]
    offsets = produce(b.bootstrap, topic, items)
    latest = {key: (offsets[i], value) for i, (key, value) in enumerate(items)}
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    try:
        admin.incremental_alter_configs([resource])[resource].result(20)
    except KafkaException:
        pass  # the change starts the cleaner, whose crash can beat the answer out: waited for below
    marker = f"PYK_CLEANER_CRASH_AT={step}: exiting"

    def crashed() -> bool:
        if marker in b.log_text():
            return True
        try:
            produce(b.bootstrap, topic, [(FILLER, b"x")], **{"message.timeout.ms": 2000})
        except (AssertionError, KafkaException):
            pass
        return marker in b.log_text()

    wait_for(crashed, timeout=60, interval=0.5, what=f"the cleaner to crash at {step}")
    b.kill9()
    monkeypatch.delenv("PYK_CLEANER_CRASH_AT")
    # Restart without the cleaner: what is checked is exactly what recovery made of the crash.
    b.overrides["log.cleaner.enable"] = "false"
    b.start()
    part = b.partition_dir(topic, 0)
    assert not [p.name for p in part.iterdir() if p.name.endswith((".cleaned", ".swap"))]
    recs, table = read_table(b.bootstrap, topic)
    got_offsets = [r.offset for r in recs]
    assert got_offsets == sorted(set(got_offsets))
    table.pop(FILLER, None)
    assert table == latest


def test_consumer_offsets_is_compacted(broker_factory):
    """__consumer_offsets (cleanup.policy=compact) is cleaned by the same cleaner, and the group
    coordinator reloads the right committed offset from the compacted log after a restart."""
    from confluent_kafka import TopicPartition

    b = broker_factory(num_shards=1, log_cleaner_backoff_ms=200, log_cleaner_min_cleanable_ratio=0.01,
                       offsets_topic_num_partitions=1, offsets_topic_segment_bytes=4096)
    topic = unique_topic("committed")
    create_topic(b.bootstrap, topic, 1)
    produce(b.bootstrap, topic, [(b"k", b"v")] * 10)
    group = unique_topic("group")
    c = confluent_consumer(b.bootstrap, **{"group.id": group})
    try:
        for i in range(400):
            c.commit(offsets=[TopicPartition(topic, 0, i % 10 + 1)], asynchronous=False)
    finally:
        c.close()
    part = b.partition_dir("__consumer_offsets", 0)

    def compacted() -> bool:
        # A pass may have run while the commits were still arriving: wait for one after them.
        try:
            size = sum(p.stat().st_size for p in part.glob("*.log"))
        except FileNotFoundError:
            return False  # a swap replaced a segment between the listing and the stat: look again
        # 400 commits of ~100 bytes each, most of them superseded; the cleaner logs its pass
        # just after the swap that shrank the files.
        return size < 400 * 60 and "cleaned __consumer_offsets-0" in b.log_text()

    wait_for(compacted, timeout=60, what="__consumer_offsets cleaned")
    b.restart()
    c = confluent_consumer(b.bootstrap, **{"group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, 0)], timeout=20)
    finally:
        c.close()
    assert committed[0].offset == 399 % 10 + 1  # the last commit
