"""Old data leaves by the topic's policy without a pause a producer or consumer would notice.

One broker, two phases of the same steady workload (confluent-kafka producer at a fixed rate,
a consumer following the tail): first on a topic that keeps everything, then on a topic whose
retention deletes segments every second (small segment.bytes, retention.ms of a few seconds,
file.delete.delay.ms of one second, so renames and removals both happen during the run).  Each
delivery's latency is librdkafka's produce()-to-acknowledgement time (Message.latency()).

The numbers are printed (run with -s) for docs/retention.md; the assertions are loose on
purpose (a shared 2-core machine): retention really deleted segments while the producer ran,
the consumer saw every offset in order with no error, and no delivery stalled.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer, TopicPartition

from tests.helpers import confluent_consumer, create_topic, unique_topic
from tests.lifecycle.retention_helpers import live_segments

RATE = 1000  # messages per second
VALUE = b"v" * 400
PHASE_S = 8.0
SEGMENT_BYTES = 131072  # at ~450 KB/s: a roll every ~0.3 s
RETENTION_MS = 3000


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)  # seconds, one per delivered message
    errors: list[str] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)  # offsets in the order the consumer saw them

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> str:
        return (f"{len(self.latencies)} msgs, p50 {self.percentile(0.50):.1f} ms, p99 {self.percentile(0.99):.1f} ms, "
                f"max {max(self.latencies) * 1000:.1f} ms")


def _run_phase(bootstrap: str, topic: str) -> Phase:
    phase = Phase()
    stop = threading.Event()

    def consume() -> None:
        c = confluent_consumer(bootstrap)  # auto.offset.reset=error: a reset would show as an error
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            while not stop.is_set():
                for m in c.consume(num_messages=1000, timeout=0.2):
                    if m.error():
                        if m.error().code() != -191:  # _PARTITION_EOF
                            phase.errors.append(f"consumer: {m.error()}")
                    else:
                        phase.consumed.append(m.offset())
        finally:
            c.close()

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            phase.errors.append(f"producer: {err}")
        else:
            phase.latencies.append(msg.latency())

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all", "message.timeout.ms": 20000})
    # Warm-up outside the measurement: metadata, connections, the leader's first append.
    p.produce(topic, VALUE, partition=0)
    assert p.flush(30) == 0
    sent = 1
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    started = time.monotonic()
    while time.monotonic() - started < PHASE_S:
        due = 1 + int((time.monotonic() - started) * RATE)
        while sent < due:
            p.produce(topic, VALUE, partition=0, on_delivery=on_delivery)
            sent += 1
        p.poll(0.002)
    assert p.flush(30) == 0
    # Let the consumer reach the end, then stop it.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not phase.consumed or phase.consumed[-1] < sent - 1):
        time.sleep(0.1)
    stop.set()
    consumer.join(10)
    return phase


def test_retention_does_not_pause_clients(broker_factory):
    b = broker_factory(log_retention_check_interval_ms=1000)
    keep, drop = unique_topic("keep"), unique_topic("drop")
    create_topic(b.bootstrap, keep, config={"segment.bytes": str(SEGMENT_BYTES), "retention.ms": "-1"})
    create_topic(b.bootstrap, drop, config={"segment.bytes": str(SEGMENT_BYTES), "retention.ms": str(RETENTION_MS),
                                            "file.delete.delay.ms": "1000"})
    baseline = _run_phase(b.bootstrap, keep)
    retained = _run_phase(b.bootstrap, drop)
    deletions = b.log_text().count(f"/{drop}-0: deleting segment")
    print(f"\nproduce latency without retention: {baseline.summary()}"
          f"\nproduce latency with retention:    {retained.summary()}; {deletions} segments deleted during the run")
    for phase in (baseline, retained):
        assert phase.errors == []
        assert phase.consumed == list(range(len(phase.consumed))) and len(phase.consumed) == len(phase.latencies) + 1
        assert max(phase.latencies) < 5.0, "a delivery stalled"
    # Retention ran throughout the phase: several passes, each deleting expired segments.
    assert deletions >= 5
    assert int(live_segments(b.partition_dir(drop, 0))[0].name.split(".")[0]) > 0
