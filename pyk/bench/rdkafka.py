"""`--client librdkafka`: the same workloads through confluent-kafka, for real client behaviour.

Owns the librdkafka data path.  Every `-X` property goes to the Producer and every `-Y` to the
Consumer unchanged, so sweeps of linger.ms, batch.size, fetch.wait.max.ms, ... measure what an
application with those settings would see.  It is slower than the raw generator (one Python
call and one delivery callback per message, a few hundred thousand messages per second at
best): use it for behaviour, the raw client for throughput limits.

The producer and the consumer each run in a thread (librdkafka releases the GIL while it
waits); each thread owns its tick's `Interval` and hands it to the event loop at tick
boundaries, so counters are never shared between threads.  Latencies are tallied per
microsecond in a dict and folded into the HDR histogram once per tick (a histogram insert per
message would cost more than the message).

Latency: produce = when the message was due (its produce() call when unthrottled) -> delivery
report; e2e = due -> the consumer's poll returning it.  The first 16 bytes of each value carry
the due time (CLOCK_MONOTONIC ns), as in the raw client.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pyk.bench import generator
from pyk.bench.batches import STAMP_SIZE, payloads
from pyk.bench.phases import (
    DEFAULT_PREFILL,
    START_DELAY_S,
    Outcome,
    Progress,
    end_e2e,
    prefill,
    tick_progress,
)
from pyk.bench.stats import CpuClock, Interval, Timeline
from pyk.bench.workload import RAW_PRODUCER_PROPS, Workload, resolve
from pyk.client import Cluster, PartitionInfo

_STAMP = struct.Struct(">qq")
CONSUMER_START_S = 1.5
POLL_EVERY = 1000  # produce() calls between poll(0)s: serves delivery callbacks without a syscall per message


def _bucket(us: int) -> int:
    """us rounded down to HDR precision (10 significant bits, ~3 digits): the tally then holds at
    most ~1000 keys per power of two, so folding it into the histogram stays cheap."""
    shift = us.bit_length() - 10
    return us if shift <= 0 else (us >> shift) << shift


class _Ticks:
    """A thread's tick bookkeeping: its current Interval, per-µs latency tally, and hand-over."""

    def __init__(self, emit: Callable[[int, float, Interval], None], t0_ns: int, interval_s: float) -> None:
        self.emit = emit
        self.t0_ns = t0_ns
        self.interval_ns = int(interval_s * 1e9)
        self.k = 0
        self.current = Interval()
        self.tally: dict[int, int] = {}

    def maybe_emit(self, now_ns: int) -> None:
        while now_ns >= self.t0_ns + (self.k + 1) * self.interval_ns:
            self._emit((self.k + 1) * self.interval_ns / 1e9)

    def _emit(self, end_s: float) -> None:
        iv, self.current = self.current, Interval()
        for us, n in self.tally.items():
            iv.latency.record_ns(us * 1000, n)
        self.tally = {}
        self.emit(self.k, end_s, iv)
        self.k += 1

    def finish(self, now_ns: int) -> float:
        self.maybe_emit(now_ns)
        end = (now_ns - self.t0_ns) / 1e9
        self._emit(end)
        return end


def _producer_thread(w: Workload, parts: list[PartitionInfo], ticks: _Ticks, t0_ns: int, stop_ns: int,
                     stop: threading.Event) -> int:
    from confluent_kafka import KafkaException, Producer

    conf = {"bootstrap.servers": w.bootstrap, "client.id": "pyk-bench", **w.producer_props}
    producer = Producer(conf)
    pool = payloads(w.size, 1024)
    tails = [p[STAMP_SIZE:] for p in pool] if w.size >= STAMP_SIZE else pool
    stamped = w.size >= STAMP_SIZE
    partitions = [p.partition for p in parts]
    topic = w.topic

    def deliver(err: Any, msg: Any) -> None:
        iv = ticks.current
        if err is not None:
            iv.error(err.code() if err.code() >= 0 else -1)
            return
        iv.records += 1
        iv.bytes += w.size
        if stamped:
            due = _STAMP.unpack_from(msg.value(), 0)[0]
            us = (time.monotonic_ns() - due) // 1000
        else:
            us = int((msg.latency() or 0) * 1e6)
        us = _bucket(us)
        tally = ticks.tally
        tally[us] = tally.get(us, 0) + 1

    sent = 0
    limit = w.messages or -1
    rate = w.rate
    i = 0
    np = len(partitions)
    while not stop.is_set():
        now = time.monotonic_ns()
        ticks.maybe_emit(now)
        if stop_ns and now >= stop_ns:
            break
        if limit >= 0 and sent >= limit:
            break
        if rate > 0:
            due_count = int((now - t0_ns) * rate / 1e9) + 1
            todo = min(due_count - sent, POLL_EVERY)
            if todo <= 0:
                producer.poll(0.001)  # 1 ms granularity: finer waits cost a core in wake-ups
                continue
        else:
            todo = POLL_EVERY
        if limit >= 0:
            todo = min(todo, limit - sent)
        for _ in range(todo):
            due = t0_ns + int(sent * 1e9 / rate) if rate > 0 else time.monotonic_ns()
            value = _STAMP.pack(due, due) + tails[i] if stamped else pool[i]
            i = (i + 1) & 1023
            while True:
                try:
                    producer.produce(topic, value, partition=partitions[sent % np], on_delivery=deliver)
                    break
                except BufferError:  # local queue full: serve callbacks, then retry
                    producer.poll(0.005)
                except KafkaException as exc:
                    ticks.current.error(-1)
                    raise RuntimeError(f"produce failed: {exc}") from exc
            sent += 1
        producer.poll(0)
    deadline = time.monotonic() + 30
    while len(producer) and time.monotonic() < deadline:
        producer.poll(0.05)
        ticks.maybe_emit(time.monotonic_ns())
    return sent


def _consumer_thread(w: Workload, parts: list[PartitionInfo], ticks: _Ticks, start: dict[int, int],
                     state: generator.ConsumeState, latency: bool) -> None:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    conf = {"bootstrap.servers": w.bootstrap, "group.id": f"pyk-bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, "enable.partition.eof": False, "client.id": "pyk-bench",
            **w.consumer_props}  # fmt: skip
    consumer = Consumer(conf)
    consumer.assign([TopicPartition(w.topic, p.partition, start[p.partition]) for p in parts])
    time.sleep(max(ticks.t0_ns - time.monotonic_ns(), 0) / 1e9)  # records count from t0 on
    offsets = state.offsets
    try:
        while not state.should_stop():
            # poll() returns as soon as one message is there; consume(timeout=0) then drains what
            # else has arrived.  (consume(n, timeout) alone waits for n messages or the timeout,
            # which would add up to the timeout to every e2e latency.)
            first = consumer.poll(0.05)
            now = time.monotonic_ns()
            ticks.maybe_emit(now)
            if first is None:
                continue
            msgs = [first, *consumer.consume(num_messages=10000, timeout=0)]
            iv = ticks.current
            tally = ticks.tally
            n = 0
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        iv.error(err.code() if err.code() >= 0 else -1)
                    continue
                n += 1
                partition, offset = m.partition(), m.offset()
                assert partition is not None and offset is not None  # a message, not an event
                offsets[partition] = offset + 1
                if latency:
                    value = m.value()
                    if value is not None and len(value) >= STAMP_SIZE:
                        us = _bucket((now - _STAMP.unpack_from(value, 0)[0]) // 1000)
                        tally[us] = tally.get(us, 0) + 1
            iv.records += n
            iv.bytes += n * w.size
            if n:
                state.consumed += n
                state.last_data_ns = now
    finally:
        consumer.close()


async def run(w: Workload, cluster: Cluster, parts: list[PartitionInfo], broker_clock: CpuClock | None) -> Outcome:
    """The librdkafka version of runner._run_raw: same timelines, same Outcome."""
    loop = asyncio.get_running_loop()
    me = os.getpid()
    ptimeline = Timeline(w.interval, broker_clock, CpuClock([me], children=False))
    ctimeline = ptimeline if w.mode == "produce" else Timeline(w.interval, broker_clock, CpuClock([me], children=False))
    main = ptimeline if w.mode == "produce" else ctimeline
    notes: list[str] = []
    latest: dict[int, int] = {}

    def emitter(tl: Timeline) -> Callable[[int, float, Interval], None]:
        def emit(k: int, end: float, iv: Interval) -> None:
            loop.call_soon_threadsafe(tl.add, k, end, iv)

        return emit

    if w.mode == "consume":
        earliest = await cluster.list_offsets(w.topic, parts, -2)
        latest = await cluster.list_offsets(w.topic, parts, -1)
        if sum(latest.values()) == sum(earliest.values()):
            count = w.messages or DEFAULT_PREFILL
            pprops, _ = resolve(w.producer_props, RAW_PRODUCER_PROPS)
            settings = generator.ProducerSettings.from_props(pprops, w.size, w.acks, w.codec)
            await prefill(cluster, w, parts, settings, count)
            notes.append(f"filled the empty topic with {count:,} messages first (raw producer)")
            latest = await cluster.list_offsets(w.topic, parts, -1)
        start = earliest if w.from_start else dict(latest)
    else:
        start = await cluster.list_offsets(w.topic, parts, -1)

    stop = threading.Event()
    # e2e: the consumer needs its assignment and first metadata round before the producer starts.
    delay = START_DELAY_S + (CONSUMER_START_S if w.mode == "e2e" else 0.0)
    t0 = time.monotonic_ns() + int(delay * 1e9)
    stop_ns = t0 + int(w.duration * 1e9) if w.duration > 0 else 0
    progress = Progress(w.progress, "produce" if w.mode == "produce" else "consume")
    futures = []
    state = None
    producer_done = asyncio.Event()
    ends: list[float] = []

    if w.mode != "produce":
        state = generator.ConsumeState(dict(start), latest if w.mode == "consume" else None,
                                       w.messages if w.mode == "consume" else 0,
                                       stop_ns if w.mode == "consume" else 0)
        cticks = _Ticks(emitter(ctimeline), t0, w.interval)

        def consume() -> None:
            try:
                _consumer_thread(w, parts, cticks, start, state, w.mode == "e2e")
            finally:
                ends.append(cticks.finish(time.monotonic_ns()))

        futures.append(loop.run_in_executor(None, consume))
        if w.mode == "e2e":
            futures.append(asyncio.ensure_future(end_e2e(producer_done, ptimeline, state, w.idle_timeout)))

    if w.mode != "consume":
        pticks = _Ticks(emitter(ptimeline), t0, w.interval)

        def produce() -> None:
            try:
                _producer_thread(w, parts, pticks, t0, stop_ns, stop)
            finally:
                end = pticks.finish(time.monotonic_ns())
                if w.mode == "produce":
                    ends.append(end)
                loop.call_soon_threadsafe(producer_done.set)

        futures.append(loop.run_in_executor(None, produce))

    ticker = asyncio.ensure_future(tick_progress(main, ptimeline, progress, t0, w))
    try:
        await asyncio.gather(*futures)
    finally:
        stop.set()
        ticker.cancel()
        progress.close()
    await asyncio.sleep(0)  # let the threads' last call_soon_threadsafe hand-overs run
    elapsed = max(main.ends.values(), default=0.0)
    main.sample_cpu(elapsed)
    extra: dict[str, Any] = {}
    if w.mode == "e2e":
        produced = sum(iv.records for iv in ptimeline.ticks.values())
        extra.update(produced=produced, lost=max(produced - (state.consumed if state else 0), 0),
                     produce_errors=sum(iv.errors for iv in ptimeline.ticks.values()))
    if w.mode == "consume" and state is not None:
        extra["end_reached"] = all(state.offsets[p] >= e for p, e in latest.items())
    kind = {"produce": "produce->delivery report", "consume": "none", "e2e": "produce->consume"}[w.mode]
    result = main.total(w.mode, elapsed, w.warmup, kind, extra)
    return Outcome(w, result, main.rows(), ptimeline.rows() if ptimeline is not main else [], notes)
