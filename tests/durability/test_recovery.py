"""Start-up recovery from damaged files: a torn tail on the active segment, missing or corrupt indexes.

The damage is done while the broker is down, the way a crash or a disk leaves it:
* torn tail after kill -9 (no clean-shutdown marker): the last batch cut inside its header, cut
  inside its records, or followed by zero bytes (a file extended but never written).  Recovery must
  truncate to the last whole batch; everything before it reads back intact, and the next append
  lands exactly at the recovered log end.
* `.index` / `.timeindex` deleted or overwritten with junk after a clean stop: rebuilt from the
  `.log`, so seeks and offsets-for-times still find the right records.
"""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import Producer, TopicPartition

from tests.helpers import (
    Rec,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    read_batches,
    segment_files,
    unique_topic,
)


def _produce_batches(bootstrap: str, topic: str, batches: int, per_batch: int, ts0: int) -> list[bytes]:
    """`batches` flushes of `per_batch` records each (so, about one batch per flush); returns the values."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "acks": -1})
    values = []
    for b in range(batches):
        for i in range(per_batch):
            n = len(values)
            value = b"batch%03d-rec%03d-" % (b, i) + b"x" * 150
            p.produce(topic, key=b"%d" % n, value=value, partition=0, timestamp=ts0 + n * 10)
            values.append(value)
        assert p.flush(20) == 0
    return values


@pytest.mark.parametrize("drop_index", [False, True], ids=["index-kept", "index-deleted"])
@pytest.mark.parametrize("cut", ["in-header", "in-records", "zero-tail"])
def test_torn_tail_is_truncated_on_restart(broker_factory, cut, drop_index):
    b = broker_factory()
    topic = unique_topic(f"torn-{cut}")
    create_topic(b.bootstrap, topic)
    ts0 = int(time.time() * 1000) - 60_000
    values = _produce_batches(b.bootstrap, topic, batches=12, per_batch=5, ts0=ts0)
    b.kill9()

    seg = segment_files(b.partition_dir(topic, 0))[-1]
    batches = read_batches(seg)
    assert sum(x.record_count for x in batches) == len(values) and len(batches) >= 2
    last = batches[-1]
    with open(seg, "r+b") as f:
        if cut == "in-header":
            f.truncate(last.position + 30)
            survivors = last.base_offset
        elif cut == "in-records":
            f.truncate(last.position + last.size - 7)
            survivors = last.base_offset
        else:
            f.seek(0, os.SEEK_END)
            f.write(b"\x00" * 4096)
            survivors = last.last_offset + 1
    if drop_index:
        seg.with_suffix(".index").unlink(missing_ok=True)
        seg.with_suffix(".timeindex").unlink(missing_ok=True)

    b.start()
    assert confluent_watermarks(b.bootstrap, topic) == (0, survivors)
    got = confluent_consume(b.bootstrap, topic, 0, 0, survivors)
    assert [r.offset for r in got] == list(range(survivors))
    assert [r.value for r in got] == values[:survivors]
    assert [r.key for r in got] == [b"%d" % i for i in range(survivors)]
    # The next append lands right after the last whole batch, and the file holds no leftover bytes.
    assert confluent_produce(b.bootstrap, topic, [Rec(b"next", b"after recovery")]) == [(0, survivors)]
    tail = confluent_consume(b.bootstrap, topic, 0, survivors - 1, 2)
    assert [(r.offset, r.value) for r in tail] == [
        (survivors - 1, values[survivors - 1]),
        (survivors, b"after recovery"),
    ]
    on_disk = [x for f in segment_files(b.partition_dir(topic, 0)) for x in read_batches(f)]
    assert on_disk[-1].base_offset == survivors and on_disk[-1].record_count == 1
    for f in segment_files(b.partition_dir(topic, 0)):
        assert sum(x.size for x in read_batches(f)) == f.stat().st_size, (
            f"{f.name}: bytes after the last whole batch"
        )


@pytest.mark.parametrize("damage", ["deleted", "junk", "empty"])
def test_missing_or_corrupt_indexes_are_rebuilt(broker_factory, damage):
    """Several segments with dense indexes; after a clean stop every index is damaged the same way."""
    b = broker_factory(log_segment_bytes=64 * 1024, log_index_interval_bytes=1024)
    topic = unique_topic(f"index-{damage}")
    create_topic(b.bootstrap, topic)
    ts0 = int(time.time() * 1000) - 3_600_000
    values = _produce_batches(b.bootstrap, topic, batches=30, per_batch=40, ts0=ts0)
    n = len(values)
    assert b.stop() == 0, b.log_tail()
    pdir = b.partition_dir(topic, 0)
    assert len(segment_files(pdir)) > 3, "expected several segments"
    for suffix in (".index", ".timeindex"):
        for f in segment_files(pdir, suffix):
            if damage == "deleted":
                f.unlink()
            elif damage == "junk":
                f.write_bytes(b"\xff\x13\x37" * 333)  # not a whole number of entries, offsets nonsense
            else:
                f.write_bytes(b"")

    b.start()
    assert confluent_watermarks(b.bootstrap, topic) == (0, n)
    for start in (0, 1, n // 3, n // 2 + 7, n - 1):
        (r,) = confluent_consume(b.bootstrap, topic, 0, start, 1)
        assert (r.offset, r.value) == (start, values[start]), f"seek to {start}"
    c = confluent_consumer(b.bootstrap)
    try:
        for target in (0, 777, n - 2):
            (found,) = c.offsets_for_times([TopicPartition(topic, 0, ts0 + target * 10 - 5)], timeout=10)
            assert found.offset == target, f"offsets_for_times for the timestamp of record {target}"
    finally:
        c.close()
    assert confluent_produce(b.bootstrap, topic, [Rec(b"k", b"v")]) == [(0, n)]
