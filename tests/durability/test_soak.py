"""Soak: many kill -9 / restart cycles under a continuous acks=all stream (minutes; `-m soak` only).

Each cycle lets the stream run, kills the broker, restarts it on the same directory while the same
producer keeps going (an idempotent one, so its retries must be deduplicated against what the dead
broker had written), and checks every partition: contiguous offsets, every acknowledged value at
its offset, no value twice.
"""

from __future__ import annotations

import time

import pytest

from tests.durability.test_kill9 import PARTITIONS, StreamingProducer, _check_partition
from tests.helpers import confluent_consume, create_topic, unique_topic, wait_for

CYCLES = 30


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_repeated_kill9_under_idempotent_stream(broker_factory):
    b = broker_factory(log_segment_bytes=512 * 1024)
    topic = unique_topic("soak-kill9")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    stream = StreamingProducer(
        b.bootstrap,
        topic,
        {
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 300_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "queue.buffering.max.messages": 20_000,
        },
    )
    stream.start()
    try:
        for cycle in range(CYCLES):
            target = stream.acked_count() + 20_000
            wait_for(
                lambda t=target: stream.acked_count() >= t, timeout=120, what=f"cycle {cycle}: {target} acks"
            )
            b.kill9()
            time.sleep(0.2 + (cycle % 4) * 0.3)  # vary the outage so retries land at different points
            b.start()
    finally:
        stream.finish(purge=False, timeout=120)
    assert not stream.errors, f"{len(stream.errors)} delivery errors, first: {stream.errors[0]}"
    for p in range(PARTITIONS):
        high = _check_partition(b.bootstrap, topic, p, stream.acked[p])
        values = [r.value for r in confluent_consume(b.bootstrap, topic, p, 0, high, timeout=120)]
        assert len(values) == len(set(values)), f"partition {p}: duplicates after {CYCLES} kill -9 cycles"
        seqs = [int(v.split(b"-")[1][:8]) for v in values]
        assert seqs == sorted(seqs), f"partition {p}: values out of produce order"
