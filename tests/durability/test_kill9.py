"""kill -9 of the broker in the middle of a produce stream, then restart: nothing acknowledged is lost.

A background confluent producer (acks=all) records every acknowledged (partition, offset, value).
After SIGKILL and a restart on the same directory, each partition must read back as offsets
0..high watermark-1 without a gap, with every acknowledged value at its acknowledged offset.
Small segments make the stream roll several segments, so recovery covers more than one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import Producer

from tests.helpers import (
    Rec,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    unique_topic,
    wait_for,
)

PARTITIONS = 2
VALUE_PAD = b"." * 100


class StreamingProducer(threading.Thread):
    """Produces `p<partition>-<seq>` values round-robin until told to stop; records acks and errors."""

    def __init__(self, bootstrap: str, topic: str, conf: dict[str, Any], limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.topic, self.limit = topic, limit
        self.producer = Producer({"bootstrap.servers": bootstrap, **conf})
        self.acked: dict[int, dict[int, bytes]] = {p: {} for p in range(PARTITIONS)}
        self.errors: list[str] = []
        self.sent = 0
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def _on_delivery(self, err: Any, msg: Any) -> None:
        with self.lock:
            if err is None:
                self.acked[msg.partition()][msg.offset()] = msg.value()
            else:
                self.errors.append(str(err))

    def acked_count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def run(self) -> None:
        """Produces until stopped or `limit` is reached, then serves delivery reports until none is
        outstanding (callbacks only run inside poll)."""
        seq = 0
        while not self.stop_event.is_set():
            if self.limit is not None and seq >= self.limit:
                if len(self.producer) == 0:
                    return
                self.producer.poll(0.1)
                continue
            p = seq % PARTITIONS
            try:
                self.producer.produce(
                    self.topic,
                    value=b"p%d-%08d" % (p, seq) + VALUE_PAD,
                    partition=p,
                    on_delivery=self._on_delivery,
                )
                seq += 1
                self.sent = seq
            except BufferError:
                self.producer.poll(0.05)
            self.producer.poll(0)

    def finish(self, purge: bool, timeout: float) -> None:
        """Stops producing; purge drops what is queued or in flight (their callbacks report errors)."""
        self.stop_event.set()
        self.join(10)
        if purge:
            self.producer.purge(in_queue=True, in_flight=True)
        self.producer.flush(timeout)


def _check_partition(bootstrap: str, topic: str, p: int, acked: dict[int, bytes]) -> int:
    low, high = confluent_watermarks(bootstrap, topic, p)
    assert low == 0
    if acked:
        assert high >= max(acked) + 1, (
            f"partition {p}: high watermark {high} below acknowledged offset {max(acked)}"
        )
    got = confluent_consume(bootstrap, topic, p, 0, high, timeout=60)
    assert [r.offset for r in got] == list(range(high)), (
        f"partition {p}: offsets not contiguous 0..{high - 1}"
    )
    by_offset = {r.offset: r.value for r in got}
    missing = [o for o, v in acked.items() if by_offset.get(o) != v]
    assert not missing, (
        f"partition {p}: {len(missing)} acknowledged records lost or changed, first at {min(missing)}"
    )
    return high


def test_kill9_during_acks_all_stream(broker_factory):
    b = broker_factory(log_segment_bytes=256 * 1024)
    topic = unique_topic("kill9")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    stream = StreamingProducer(
        b.bootstrap, topic, {"acks": -1, "linger.ms": 2, "retries": 0, "message.timeout.ms": 10000}
    )
    stream.start()
    try:
        wait_for(lambda: stream.acked_count() >= 20_000, timeout=60, what="20000 acknowledged records")
        b.kill9()
    finally:
        stream.finish(purge=True, timeout=10)
    acked = {p: dict(v) for p, v in stream.acked.items()}
    assert sum(len(v) for v in acked.values()) >= 20_000

    b.start()
    highs = [_check_partition(b.bootstrap, topic, p, acked[p]) for p in range(PARTITIONS)]
    # Each partition keeps appending right after its recovered end.
    for p in range(PARTITIONS):
        assert confluent_produce(b.bootstrap, topic, [Rec(b"after", b"restart", (), None, p)]) == [
            (p, highs[p])
        ]
    segments = list(b.partition_dir(topic, 0).glob("*.log"))
    assert len(segments) > 1, "the stream was meant to roll several segments"


def test_idempotent_stream_survives_kill9_without_duplicates(broker_factory):
    """An idempotent producer keeps going across kill -9 and restart: its retries of batches the dead
    broker had already written must be recognised (producer state rebuilt from the log), so every
    value appears exactly once and in order."""
    b = broker_factory(log_segment_bytes=256 * 1024)
    topic = unique_topic("kill9-idem")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    total = 60_000
    stream = StreamingProducer(
        b.bootstrap,
        topic,
        {
            "enable.idempotence": True,
            "linger.ms": 2,
            "message.timeout.ms": 120_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        },
        limit=total,
    )
    stream.start()
    try:
        wait_for(lambda: stream.acked_count() >= 10_000, timeout=60, what="10000 acknowledged records")
        b.kill9()
        time.sleep(0.5)
        b.start()
        stream.join(120)
    finally:
        stream.finish(purge=False, timeout=120)
    assert not stream.errors, f"{len(stream.errors)} delivery errors, first: {stream.errors[0]}"
    for p in range(PARTITIONS):
        expected = [b"p%d-%08d" % (p, seq) + VALUE_PAD for seq in range(p, total, PARTITIONS)]
        high = _check_partition(b.bootstrap, topic, p, stream.acked[p])
        values = [r.value for r in confluent_consume(b.bootstrap, topic, p, 0, high, timeout=60)]
        dupes = len(values) - len(set(values))
        assert dupes == 0, f"partition {p}: {dupes} duplicates after the idempotent producer's retries"
        assert values == expected, f"partition {p}: order or content differs"
