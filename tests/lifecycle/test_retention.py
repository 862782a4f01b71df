"""Retention against a real `pyk serve` with real clients: old segments leave by retention.ms and
retention.bytes, the log start offset advances, consumers below it get OFFSET_OUT_OF_RANGE and
reset per auto.offset.reset (confluent-kafka and kafka-python), and a fetch in flight while its
segment is deleted still delivers intact bytes.

Retention passes run every 0.2 s (log.retention.check.interval.ms); "old" data carries CreateTime
timestamps an hour in the past, so which segments breach retention.ms is known in advance.
"""

from __future__ import annotations

import logging
import select
import socket
import time

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from tests.helpers import (
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    kafka_python_consume,
    make_records,
    wait_for,
)
from tests.lifecycle.retention_helpers import (
    alter_topic,
    deleted_files,
    live_segments,
    log_bytes,
    open_slow_fetch,
    read_fetch_response,
    retention_broker,
    whole_batches,
)

HOUR_MS = 3_600_000


def _old_then_recent(bootstrap: str, topic: str, old: int, recent: int, value_size: int = 100) -> None:
    """`old` records stamped an hour ago, then `recent` records stamped now, in batches of at most
    64 KB (so segments fill to within 64 KB of segment.bytes)."""
    past = int(time.time() * 1000) - HOUR_MS
    conf = {"batch.size": 65536}
    confluent_produce(bootstrap, topic, make_records(old, value_size=value_size, ts_base=past, prefix="old"), **conf)
    confluent_produce(bootstrap, topic, make_records(recent, value_size=value_size, prefix="new"), **conf)


def _advanced(bootstrap: str, topic: str) -> tuple[int, int] | None:
    """(low, high) watermarks once the log start offset has left 0."""
    low, high = confluent_watermarks(bootstrap, topic)
    return (low, high) if low > 0 else None


def _first_base(partition_dir) -> int:
    return int(live_segments(partition_dir)[0].name.split(".")[0])


def test_retention_ms_drops_old_segments_and_consumers_reset(broker_factory, topic):
    b = retention_broker(broker_factory)
    create_topic(b.bootstrap, topic, config={"segment.bytes": "4096", "retention.ms": str(10 * 60_000),
                                             "file.delete.delay.ms": "1000"})
    _old_then_recent(b.bootstrap, topic, old=200, recent=20)
    pdir = b.partition_dir(topic, 0)
    low, high = wait_for(lambda: _advanced(b.bootstrap, topic), timeout=20, what="the log start offset to advance")
    assert high == 220
    # Only whole segments went: the log start is the base of the first segment left, and that
    # segment holds the first recent record (its largest timestamp is recent).
    assert low == _first_base(pdir) <= 200
    assert "due to log retention time 600000ms breach based on the largest record timestamp" in b.log_text()
    assert f"incremented log start offset to {low}" in b.log_text()

    # An earliest consumer starts at the new start.
    (first,) = confluent_consume(b.bootstrap, topic, start=OFFSET_BEGINNING, count=1)
    assert first.offset == low
    # A consumer below it gets OFFSET_OUT_OF_RANGE and resets per auto.offset.reset=earliest.
    assert confluent_consume(b.bootstrap, topic, start=0, count=1, **{"auto.offset.reset": "earliest"})[0].offset == low
    assert kafka_python_consume(b.bootstrap, topic, start=0, count=1, auto_offset_reset="earliest")[0].offset == low
    _latest_reset(b.bootstrap, topic, high)

    # The renamed files go once file.delete.delay.ms has passed.
    wait_for(lambda: not deleted_files(pdir), timeout=15, what=".deleted files to be removed")

    # Once every record has expired, the active segment is rolled and deleted too (Kafka does
    # the same): the log is empty, starting at its end offset.
    alter_topic(b.bootstrap, topic, retention_ms="1000")
    end = confluent_watermarks(b.bootstrap, topic)[1]
    wait_for(lambda: confluent_watermarks(b.bootstrap, topic) == (end, end), timeout=20,
             what="all data to expire")
    wait_for(lambda: [p.name for p in live_segments(pdir)] == [f"{end:020d}.log"], timeout=10,
             what="one empty segment at the log end")
    confluent_produce(b.bootstrap, topic, make_records(1, prefix="after"))
    (rec,) = confluent_consume(b.bootstrap, topic, start=OFFSET_BEGINNING, count=1)
    assert (rec.offset, rec.value) == (end, b"after-0")


class _ListHandler(logging.Handler):
    def __init__(self, out: list[str]) -> None:
        super().__init__()
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(record.getMessage())


def _latest_reset(bootstrap: str, topic: str, high: int) -> None:
    """Consumers at offset 0 (below the log start) with auto.offset.reset=latest move to the end:
    they receive only what is produced afterwards."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KpTopicPartition

    resets: list[str] = []
    logger = logging.getLogger(f"rdkafka-{topic}")
    logger.addHandler(_ListHandler(resets))
    c = confluent_consumer(bootstrap, **{"auto.offset.reset": "latest", "logger": logger})
    kp = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                       auto_offset_reset="latest", fetch_max_wait_ms=100)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        ktp = KpTopicPartition(topic, 0)
        kp.assign([ktp])
        kp.seek(ktp, 0)

        def confluent_reset() -> bool:
            c.poll(0.2)  # serves the log callback too
            return any("offset reset" in m and "to offset END" in m and "Offset out of range" in m for m in resets)

        # librdkafka reports the reset in its log (its position() stays unset until a message arrives).
        wait_for(confluent_reset, timeout=20, what="confluent-kafka to reset to the latest offset")
        wait_for(lambda: not kp.poll(timeout_ms=200) and kp.position(ktp) == high, timeout=20,
                 what="kafka-python to reset to the latest offset")
        confluent_produce(bootstrap, topic, make_records(1, prefix="late"))
        got = wait_for(lambda: c.poll(0.5), timeout=20, what="confluent-kafka to receive the new record")
        assert got.error() is None and got.offset() == high
        records = wait_for(lambda: kp.poll(timeout_ms=500).get(ktp), timeout=20,
                           what="kafka-python to receive the new record")
        assert records[0].offset == high
    finally:
        c.close()
        kp.close()


def test_retention_bytes_keeps_the_partition_under_the_bound(broker_factory, topic):
    b = retention_broker(broker_factory)
    bound, segment = 20_000, 4096
    create_topic(b.bootstrap, topic, config={"segment.bytes": str(segment), "retention.bytes": str(bound)})
    # Small batches (librdkafka would otherwise pack ~100 KB into one batch, larger than a segment).
    confluent_produce(b.bootstrap, topic, make_records(600, value_size=200), **{"batch.size": 2000})
    pdir = b.partition_dir(topic, 0)
    # Kafka's rule: the oldest segments go while what remains is still >= retention.bytes, so the
    # partition ends within one segment above the bound.
    wait_for(lambda: log_bytes(pdir) < bound + segment, timeout=20, what="the log to shrink under the bound")
    assert log_bytes(pdir) >= bound
    low, high = confluent_watermarks(b.bootstrap, topic)
    assert high == 600 and low == _first_base(pdir) > 0
    assert "due to log retention size 20000 breach" in b.log_text()
    # The newest records are all still there, from the new log start to the end.
    recs = confluent_consume(b.bootstrap, topic, start=low, count=high - low)
    assert [r.offset for r in recs] == list(range(low, high))
    assert recs[-1].value.startswith(b"r-599")
    # A crash before the periodic checkpoint: the log start comes back from the first segment
    # left (retention writes no checkpoint itself), and leftover .deleted files are removed.
    assert deleted_files(pdir), "renamed files wait for file.delete.delay.ms (60 s by default)"
    b.kill9()
    b.start()
    assert confluent_watermarks(b.bootstrap, topic) == (low, high)
    assert deleted_files(pdir) == []


def test_fetch_in_flight_during_deletion_completes(broker_factory, topic, tmp_path):
    # A small socket send buffer on the broker and receive buffer on the client keep a 2.5 MB
    # response mostly unsent while retention renames its segment; the sendfile() that follows
    # reads from the still-open fd of the renamed file.
    b = retention_broker(broker_factory, socket_send_buffer_bytes=65536)
    create_topic(b.bootstrap, topic, config={"segment.bytes": "2500000", "retention.ms": "-1",
                                             "file.delete.delay.ms": "8000"})
    _old_then_recent(b.bootstrap, topic, old=1500, recent=5, value_size=2000)
    pdir = b.partition_dir(topic, 0)
    first_segment = live_segments(pdir)[0]
    segment_size = first_segment.stat().st_size
    second_base = int(live_segments(pdir)[1].name.split(".")[0])
    assert segment_size > 2_000_000

    sock = open_slow_fetch(b.bootstrap, topic, 0, 0, max_bytes=8 << 20)
    # Far more than both socket buffers can hold: most of the response is still unsent.
    assert segment_size > 4 * (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) + 2 * 65536)
    try:
        assert select.select([sock], [], [], 10)[0], "the broker started answering the fetch"
        alter_topic(b.bootstrap, topic, retention_ms=str(10 * 60_000))  # the first segment is an hour old
        wait_for(lambda: not first_segment.exists() and deleted_files(pdir), timeout=20,
                 what="the first segment to be renamed to .deleted")
        assert confluent_watermarks(b.bootstrap, topic)[0] == second_base
        part = read_fetch_response(sock)
    finally:
        sock.close()
    assert part["error_code"] == 0
    records = bytes(part["records"])
    assert len(records) == segment_size  # the whole first segment, as it was
    batches = whole_batches(records, tmp_path)
    assert batches[0][0] == 0 and batches[-1][1] == second_base - 1
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in zip(batches, batches[1:], strict=False))
    wait_for(lambda: not deleted_files(pdir), timeout=40, what="the .deleted files to go after the delay")
