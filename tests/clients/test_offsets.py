"""Offsets as clients see them: earliest/latest, by timestamp, seek and replay, LogAppendTime, long poll.

Timestamps are explicit CreateTime values far from "now", chosen so the expected answer of every
offsets-for-times query is known: the first offset whose timestamp is >= the target.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, TopicPartition

from tests.helpers import (
    Rec,
    confluent_consumer,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    kcat,
    make_records,
    unique_topic,
    wait_for,
)

N = 10
STEP = 1000


@pytest.fixture(scope="module")
def timed(broker):
    """A topic of N records at ts0, ts0+1s, ...; returns (topic, ts0)."""
    topic = unique_topic("timed")
    ts0 = int(time.time() * 1000) - 3_600_000
    create_topic(broker.bootstrap, topic)
    recs = [Rec(r.key, r.value, r.headers, ts0 + i * STEP) for i, r in enumerate(make_records(N))]
    confluent_produce(broker.bootstrap, topic, recs)
    return topic, ts0


# (target relative to ts0, expected offset; None = no such record)
QUERIES = [(-5000, 0), (0, 0), (1, 1), (2500, 3), (9000, 9), (9001, None), (10**9, None)]


def test_confluent_offsets_for_times(broker, timed):
    topic, ts0 = timed
    c = confluent_consumer(broker.bootstrap)
    try:
        for delta, expected in QUERIES:
            (tp,) = c.offsets_for_times([TopicPartition(topic, 0, ts0 + delta)], timeout=10)
            assert tp.error is None
            assert tp.offset == (-1 if expected is None else expected), f"target ts0{delta:+d}"
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
    finally:
        c.close()


def test_kafka_python_offsets_for_times(broker, timed):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    topic, ts0 = timed
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KpTP(topic, 0)
        for delta, expected in QUERIES:
            found = c.offsets_for_times({tp: max(0, ts0 + delta)})[tp]
            if expected is None:
                assert found is None, f"target ts0{delta:+d}"
            else:
                assert (found.offset, found.timestamp) == (expected, ts0 + expected * STEP), (
                    f"target ts0{delta:+d}"
                )
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: N}
    finally:
        c.close()


def test_aiokafka_offsets_for_times(broker, timed):
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioTP

    topic, ts0 = timed

    async def run() -> None:
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            tp = AioTP(topic, 0)
            for delta, expected in QUERIES:
                found = (await c.offsets_for_times({tp: max(0, ts0 + delta)}))[tp]
                if expected is None:
                    assert found is None, f"target ts0{delta:+d}"
                else:
                    assert (found.offset, found.timestamp) == (expected, ts0 + expected * STEP)
            assert await c.beginning_offsets([tp]) == {tp: 0}
            assert await c.end_offsets([tp]) == {tp: N}
        finally:
            await c.stop()

    asyncio.run(run())


def test_kcat_query_offsets_by_time(broker, timed):
    topic, ts0 = timed
    out = kcat(["-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:{ts0 + 2500}"]).stdout.decode()
    assert "offset 3" in out, out


def test_confluent_seek_and_replay(broker, timed):
    topic, ts0 = timed
    c = confluent_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        first = _take(c, N)
        assert [m.offset() for m in first] == list(range(N))
        c.seek(TopicPartition(topic, 0, 4))
        replay = _take(c, N - 4)
        assert [(m.offset(), m.value()) for m in replay] == [(m.offset(), m.value()) for m in first[4:]]
        assert [m.timestamp() for m in replay] == [
            (TIMESTAMP_CREATE_TIME, ts0 + i * STEP) for i in range(4, N)
        ]
        c.seek(TopicPartition(topic, 0, 0))
        assert [m.offset() for m in _take(c, 2)] == [0, 1]
    finally:
        c.close()


def _take(c, n: int, timeout: float = 15.0) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in c.consume(num_messages=n - len(out), timeout=0.5):
            assert m.error() is None, m.error()
            out.append(m)
    return out


def test_kafka_python_seek_and_replay(broker, timed):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    topic, _ = timed
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    tp = KpTP(topic, 0)
    try:
        c.assign([tp])
        c.seek_to_beginning(tp)
        assert [m.offset for m in _kp_take(c, N)] == list(range(N))
        assert c.position(tp) == N
        c.seek(tp, 7)
        assert [(m.offset, m.value) for m in _kp_take(c, 3)] == [(i, f"r-{i}".encode()) for i in (7, 8, 9)]
        c.seek_to_beginning(tp)
        assert [m.offset for m in _kp_take(c, 1)] == [0]
        c.seek_to_end(tp)
        assert c.position(tp) == N
    finally:
        c.close()


def _kp_take(c, n: int, timeout: float = 15.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for msgs in c.poll(timeout_ms=500, max_records=n - len(out)).values():
            out += msgs
    return out


def test_aiokafka_seek_and_replay(broker, timed):
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioTP

    topic, _ = timed

    async def run() -> None:
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await c.start()
        tp = AioTP(topic, 0)
        try:
            c.assign([tp])
            await c.seek_to_beginning(tp)
            first = await _aio_take(c, tp, N)
            assert [m.offset for m in first] == list(range(N))
            c.seek(tp, 6)
            again = await _aio_take(c, tp, 4)
            assert [(m.offset, m.value) for m in again] == [(m.offset, m.value) for m in first[6:]]
        finally:
            await c.stop()

    asyncio.run(run())


async def _aio_take(c, tp, n: int, timeout: float = 15.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        batches = await c.getmany(tp, timeout_ms=500, max_records=n - len(out))
        for msgs in batches.values():
            out += msgs
    return out


def test_log_append_time(broker, topic):
    """message.timestamp.type=LogAppendTime: the broker stamps every record (and re-CRCs the batch;
    kafka-python checks CRCs by default, so a stale CRC would fail its read)."""
    create_topic(broker.bootstrap, topic, config={"message.timestamp.type": "LogAppendTime"})
    old = 1_000_000_000_000  # 2001: nothing like "now"
    before = int(time.time() * 1000)
    confluent_produce(broker.bootstrap, topic, [Rec(r.key, r.value, r.headers, old) for r in make_records(5)])
    after = int(time.time() * 1000)
    c = confluent_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        msgs = _take(c, 5)
    finally:
        c.close()
    assert len(msgs) == 5
    for m in msgs:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000
    got = kafka_python_consume(broker.bootstrap, topic, 0, 0, 5, check_crcs=True)
    assert [r.value for r in got] == [f"r-{i}".encode() for i in range(5)]
    assert all(before - 1000 <= r.timestamp <= after + 1000 for r in got)


def test_long_poll_is_woken_by_append(broker_factory, topic):
    """A fetch waiting at the log end (fetch.wait.max.ms=10s) returns as soon as a record arrives."""
    broker = broker_factory(log_level="DEBUG")  # for the broker's "fetch parked" line
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap, topic, make_records(1))
    c = confluent_consumer(broker.bootstrap, **{"fetch.wait.max.ms": 10000})
    try:
        c.assign([TopicPartition(topic, 0, 1)])
        wait_for(lambda: f"on [('{topic}', 0)]" in broker.log_text(), timeout=20,
                 what="the consumer's fetch at offset 1 to park in a long poll")
        sent_at = time.monotonic()
        confluent_produce(broker.bootstrap, topic, [Rec(b"late", b"arrival")])
        msgs = _take(c, 1, timeout=9.0)
        got_at = time.monotonic()
    finally:
        c.close()
    assert [(m.offset(), m.value()) for m in msgs] == [(1, b"arrival")]
    # Produce round trip included; far below the 10 s wait, so the append woke the fetch.
    assert got_at - sent_at < 5.0


def test_multi_partition_fetch_sessions(broker, topic):
    """kafka-python uses incremental fetch sessions (KIP-227): data arriving on different partitions
    between fetches must all be delivered, none twice."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    create_topic(broker.bootstrap, topic, partitions=3)
    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200
    )
    tps = [KpTP(topic, p) for p in range(3)]
    seen: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    try:
        c.assign(tps)
        c.seek_to_beginning()
        for round_ in range(4):
            p = round_ % 3
            confluent_produce(broker.bootstrap, topic, make_records(5, partition=p, prefix=f"round{round_}"))
            expected = 5 * (round_ + 1)
            deadline = time.monotonic() + 15
            while sum(len(v) for v in seen.values()) < expected and time.monotonic() < deadline:
                for tp, msgs in c.poll(timeout_ms=300).items():
                    seen[tp.partition] += [m.value for m in msgs]
        assert seen[0] == [f"round0-{i}".encode() for i in range(5)] + [
            f"round3-{i}".encode() for i in range(5)
        ]
        assert seen[1] == [f"round1-{i}".encode() for i in range(5)]
        assert seen[2] == [f"round2-{i}".encode() for i in range(5)]
    finally:
        c.close()


def test_out_of_range_start_resets_to_earliest(broker, topic):
    """A fetch past the log end is OFFSET_OUT_OF_RANGE; with auto.offset.reset=earliest the consumer
    asks ListOffsets and starts over from the log start offset."""
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap, topic, make_records(5))
    c = confluent_consumer(broker.bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        assert [m.offset() for m in _take(c, 5)] == [0, 1, 2, 3, 4]
    finally:
        c.close()


def test_small_fetch_limits_still_make_progress(broker, topic):
    """fetch.max.bytes / max.partition.fetch.bytes below one batch: the broker still returns the first
    batch of the first partition with data (KIP-74), so a consumer reads everything, batch by batch."""
    create_topic(broker.bootstrap, topic, partitions=3)
    sent = {p: make_records(20, partition=p, prefix=f"p{p}", value_size=300) for p in range(3)}
    for p in range(3):
        confluent_produce(broker.bootstrap, topic, sent[p], **{"batch.num.messages": 4})
    got = kafka_python_consume_all(
        broker.bootstrap, topic, 3, 60, fetch_max_bytes=1024, max_partition_fetch_bytes=512
    )
    for p in range(3):
        assert [r.value for r in got[p]] == [r.value for r in sent[p]], f"partition {p}"


def test_a_first_batch_over_a_later_partitions_limit_is_not_cut(broker_factory, topic):
    """Kafka's firstEntryIncomplete: after the first partition with data, a partition whose first
    batch is larger than its share gets no records, not the batch's first bytes (kafka-python
    fails on a partition answered with bytes but no whole batch)."""
    from tests.security.wire import Wire

    b = broker_factory(overrides={"num.shards": 1})  # both partitions answered by the one shard
    create_topic(b.bootstrap, topic, partitions=2)
    for p in range(2):
        confluent_produce(b.bootstrap, topic, make_records(4, partition=p, value_size=300), **{"batch.num.messages": 4})
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": topic, "partitions": [
                {"partition": p, "current_leader_epoch": -1, "fetch_offset": 0, "last_fetched_epoch": -1,
                 "log_start_offset": -1, "partition_max_bytes": 512} for p in range(2)]}]}
    with Wire(b.bootstrap) as wire:
        first, second = wire.request(1, 12, body)["responses"][0]["partitions"]
    assert (first["error_code"], second["error_code"], second["high_watermark"]) == (0, 0, 4)
    assert len(first["records"]) > 1200  # the first with data: its whole first batch (KIP-74)
    assert not second["records"]  # over its 512 bytes: nothing rather than a cut batch


def kafka_python_consume_all(
    bootstrap: str, topic: str, partitions: int, total: int, **conf
) -> dict[int, list]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTP

    c = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100, **conf
    )
    out: dict[int, list] = {p: [] for p in range(partitions)}
    try:
        c.assign([KpTP(topic, p) for p in range(partitions)])
        c.seek_to_beginning()
        deadline = time.monotonic() + 30
        while sum(len(v) for v in out.values()) < total and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=300).items():
                out[tp.partition] += msgs
    finally:
        c.close()
    return out
