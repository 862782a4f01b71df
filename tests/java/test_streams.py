"""Kafka Streams under exactly_once_v2 against pyk, through crashes of pyk and of the application.

The application (tests/java/src/streams/RegionCounts.java) counts users by region: a repartition
topic (re-keyed by region), a state store with its changelog, and transactions that commit input
offsets, changelog and output atomically. With caching off, each input record yields one
update, so the committed output of a region must be exactly 1, 2, ..., n: a count applied twice
(state or output replayed after a crash) shows as a repeat, a lost one as a gap.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import BrokerFactory
from tests.helpers import (
    BrokerProcess,
    Rec,
    confluent_consumer,
    confluent_produce,
    confluent_read_to_end,
    create_topic,
    unique_topic,
    wait_for,
)
from tests.java.jvm import JavaProcess

# Idempotent (a broker crash neither loses nor duplicates input), quick to reconnect after one.
PRODUCER = {"enable.idempotence": True, "reconnect.backoff.max.ms": 500, "message.timeout.ms": 60000}
REGIONS = 5
PHASE = 150  # input records per phase; three phases
STREAMS_READY_S = 90.0  # JVM start, group join, internal topics, first transaction on 2 cores
PROGRESS_S = 90.0


def region_updates(bootstrap: str, topic: str) -> dict[str, list[int]]:
    """Every committed count update per region, in offset order (read_committed)."""
    out: dict[str, list[int]] = defaultdict(list)
    for r in confluent_read_to_end(bootstrap, topic, timeout=30, **{"isolation.level": "read_committed"}):
        assert r.key is not None and r.value is not None
        out[r.key.decode()].append(int(r.value))
    return out


def wait_for_counts(broker: BrokerProcess, app: JavaProcess, topic: str, count: int) -> dict[str, list[int]]:
    """Waits until every region's committed count has reached `count`."""
    deadline = time.monotonic() + PROGRESS_S
    updates: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        updates = region_updates(broker.bootstrap, topic)
        if len(updates) == REGIONS and all(u[-1] >= count for u in updates.values()):
            return updates
        time.sleep(0.5)
    raise AssertionError(
        f"counts not at {count} after {PROGRESS_S}s: { {k: v[-1:] for k, v in updates.items()} }\n"
        f"application log:\n{app.log_tail()}"
    )


def phase_records(phase: int) -> list[Rec]:
    return [
        Rec(key=f"u{i}".encode(), value=f"r{i % REGIONS}".encode(), partition=None)
        for i in range(phase * PHASE, (phase + 1) * PHASE)
    ]


@contextmanager
def trickled(bootstrap: str, topic: str, phase: int) -> Iterator[None]:
    """Produces the phase's records a few milliseconds apart from a thread, so the application
    keeps a transaction open; the block runs meanwhile, and its exit waits for every delivery."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, **PRODUCER})
    failed: list[object] = []

    def run() -> None:
        for r in phase_records(phase):
            producer.produce(
                topic, key=r.key, value=r.value, on_delivery=lambda err, _: err and failed.append(err)
            )
            producer.poll(0)
            time.sleep(0.01)

    thread = threading.Thread(target=run, name=f"trickle-{phase}")
    thread.start()
    try:
        yield
    finally:
        thread.join(60)
        left = producer.flush(60)
    assert not thread.is_alive() and left == 0 and not failed, (
        f"producing phase {phase}: {left} left, {failed}"
    )


def wait_for_open_transaction(bootstrap: str, topic: str, app: JavaProcess) -> None:
    """Waits until the output has records past its last stable offset: a transaction is open."""
    from confluent_kafka import TopicPartition

    tp = TopicPartition(topic, 0)
    committed = confluent_consumer(bootstrap, **{"isolation.level": "read_committed"})
    uncommitted = confluent_consumer(bootstrap, **{"isolation.level": "read_uncommitted"})
    try:
        wait_for(
            lambda: uncommitted.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            > committed.get_watermark_offsets(tp, timeout=10, cached=False)[1],
            timeout=PROGRESS_S, interval=0.02, what=f"an open transaction on {topic}\n{app.log_tail()}",
        )  # fmt: skip
    finally:
        committed.close()
        uncommitted.close()


def test_exactly_once_counts_survive_broker_and_app_kill9(
    broker_factory: BrokerFactory, java_classes: Path, tmp_path: Path
) -> None:
    # The dead instance's transaction (its transactional id goes with the lost state directory)
    # ends by timeout (5 s in RegionCounts): check for that every second.
    broker = broker_factory(
        group_initial_rebalance_delay_ms=0, transaction_abort_timed_out_transaction_cleanup_interval_ms=1000
    )
    source, sink = unique_topic("streams-in"), unique_topic("streams-out")
    state = tmp_path / "state"
    create_topic(broker.bootstrap, source, partitions=3)
    create_topic(broker.bootstrap, sink, partitions=1)
    app = JavaProcess(
        "streams.RegionCounts",
        (broker.bootstrap, unique_topic("region-counts"), source, sink, str(state)),
        tmp_path / "streams.log", classpath=(java_classes,),
    )  # fmt: skip
    per_phase = PHASE // REGIONS
    try:
        app.start().wait_for_line("RUNNING", STREAMS_READY_S)
        confluent_produce(broker.bootstrap, source, phase_records(0), **PRODUCER)
        wait_for_counts(broker, app, sink, per_phase)

        # pyk crashes while a transaction of the second phase is open, then returns.
        with trickled(broker.bootstrap, source, 1):
            wait_for_open_transaction(broker.bootstrap, sink, app)
            broker.kill9()
            broker.start()
        wait_for_counts(broker, app, sink, 2 * per_phase)

        # The application crashes with a transaction open and loses its disk. pyk aborts the dead
        # instance's transaction when it times out; a new instance (a new process id, so a new
        # transactional id) restores its store from the changelog, reading past the aborted
        # batches (read_committed), and carries on from the last committed input offsets.
        with trickled(broker.bootstrap, source, 2):
            wait_for_open_transaction(broker.bootstrap, sink, app)
            app.kill9()
            shutil.rmtree(state)
            app.start()
        updates = wait_for_counts(broker, app, sink, 3 * per_phase)
    finally:
        app.stop()
    expected = list(range(1, 3 * per_phase + 1))
    assert {region: counts == expected for region, counts in updates.items()} == {
        f"r{i}": True for i in range(REGIONS)
    }, {region: counts for region, counts in updates.items() if counts != expected}
