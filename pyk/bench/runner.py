"""Runs one workload from start to result: topic set-up, workers, ticks, progress, totals.

Owns the coordination of a run (the `pyk bench produce|consume|e2e` commands and each point
of a sweep):

* set-up: connect, create the topic (an existing one is kept), find partition leaders; for
  `consume` of an empty topic, fill it first (unmeasured) with the raw producer;
* the producer side runs in this process or, with `--procs N`, in N spawned worker processes,
  each with its own event loop, connections and share of partitions, rate and message count;
  workers send one `Interval` per tick through a pipe;
* the consumer side (consume, e2e) runs in this process;
* every tick the coordinator samples broker and client CPU, and prints a progress line;
* at the end: a `Result` for the run (e2e: the consumer's view, with produced/lost in `extra`)
  and the timeline for the plots.

All processes of a run share CLOCK_MONOTONIC (one host), so ticks and latency stamps line up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from pyk.bench import generator
from pyk.bench.stats import CpuClock, Interval, Result, Tick, Timeline
from pyk.bench.workload import RAW_CONSUMER_PROPS, RAW_PRODUCER_PROPS, Workload, resolve
from pyk.client import Cluster, PartitionInfo

START_DELAY_S = 0.1  # time between "go" and the first record, so every worker starts on the same tick
DEFAULT_PREFILL = 1_000_000


@dataclass
class Outcome:
    """A finished run: settings, totals, timeline, and the notes worth printing."""

    workload: Workload
    result: Result
    timeline: list[Tick]
    producer_timeline: list[Tick] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload.describe(),
            "result": self.result.to_json(),
            "timeline": [t.__dict__ for t in self.timeline],
            "producer_timeline": [t.__dict__ for t in self.producer_timeline],
            "notes": self.notes,
        }


def run(w: Workload, broker_pids: list[int] | None = None) -> Outcome:
    """Runs `w` to completion (blocking) and returns its outcome."""
    try:
        import uvloop

        return uvloop.run(_run(w, broker_pids or []))
    except ImportError:  # uvloop is a pyk dependency; plain asyncio where it cannot install
        return asyncio.run(_run(w, broker_pids or []))


class Progress:
    """One line per tick on stderr (rewritten in place on a terminal)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.tty = sys.stderr.isatty()

    def show(self, tick: Tick, extra: str = "") -> None:
        if not self.enabled:
            return
        lat = f"p50 {tick.p50_ms:7.2f} p99 {tick.p99_ms:7.2f} ms" if tick.p99_ms is not None else " " * 27
        cpu = ""
        if tick.broker_cpu_pct is not None:
            cpu += f"  broker {tick.broker_cpu_pct:3.0f}%"
        if tick.client_cpu_pct is not None:
            cpu += f"  client {tick.client_cpu_pct:3.0f}%"
        line = (f"[{tick.t:6.1f}s] {self.label:8s} {tick.msgs_per_s:12,.0f} msg/s {tick.mb_per_s:8.1f} MB/s  "
                f"{lat}{cpu}{extra}")
        if self.tty:
            sys.stderr.write("\r" + line + "\x1b[K")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _run(w: Workload, broker_pids: list[int]) -> Outcome:
    cluster = await Cluster.connect(w.bootstrap)
    try:
        if w.create_topic:
            await cluster.create_topic(w.topic, w.partitions, w.replication, w.topic_configs)
        parts = await cluster.metadata(w.topic)
        broker_clock = CpuClock(broker_pids) if broker_pids else None
        if w.client == "librdkafka":
            from pyk.bench import rdkafka

            return await rdkafka.run(w, cluster, parts, broker_clock)
        return await _run_raw(w, cluster, parts, broker_clock)
    finally:
        cluster.close()


def _shares(w: Workload, parts: list[PartitionInfo]) -> list[tuple[list[PartitionInfo], float, int]]:
    """(partitions, rate, messages) of each producer process."""
    n = w.procs
    out = []
    for i in range(n):
        mine = parts[i::n] if len(parts) >= n else [parts[i % len(parts)]]
        messages = w.messages // n + (1 if i < w.messages % n else 0) if w.messages else 0
        out.append((mine, w.rate / n if w.rate else 0.0, messages))
    return out


async def _run_raw(w: Workload, cluster: Cluster, parts: list[PartitionInfo], broker_clock: CpuClock | None) -> Outcome:
    pprops, ignored_p = resolve(w.producer_props, RAW_PRODUCER_PROPS)
    cprops, ignored_c = resolve(w.consumer_props, RAW_CONSUMER_PROPS)
    notes = [f"ignored by --client raw: {k}" for k in ignored_p + ignored_c]
    psettings = generator.ProducerSettings.from_props(pprops, w.size, w.acks, w.codec)
    csettings = generator.ConsumerSettings.from_props(cprops)
    stamped = w.mode == "e2e" or w.codec == 0

    if w.mode == "consume":
        earliest = await cluster.list_offsets(w.topic, parts, -2)
        latest = await cluster.list_offsets(w.topic, parts, -1)
        if sum(latest.values()) == sum(earliest.values()):
            count = w.messages or DEFAULT_PREFILL
            t = time.monotonic()
            await _prefill(cluster, w, parts, psettings, count)
            notes.append(f"filled the empty topic with {count:,} messages in {time.monotonic() - t:.1f} s first")
            latest = await cluster.list_offsets(w.topic, parts, -1)
        start = earliest if w.from_start else dict(latest)
    elif w.mode == "e2e":
        start = await cluster.list_offsets(w.topic, parts, -1)

    me = os.getpid()
    procs: list[multiprocessing.process.BaseProcess] = []
    pipes: list[Pipe] = []
    main_label = "produce" if w.mode == "produce" else "consume"
    ptimeline = Timeline(w.interval, broker_clock, CpuClock([me], children=False))
    ctimeline = ptimeline if w.mode == "produce" else Timeline(w.interval, None, CpuClock([me], children=False))
    use_procs = w.mode != "consume" and w.procs > 1
    if use_procs:
        ctx = multiprocessing.get_context("spawn")
        for mine, rate, messages in _shares(w, parts):
            ours, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(w, mine, rate, messages, stamped, theirs), daemon=True)
            p.start()
            theirs.close()
            procs.append(p)
            pipes.append(ours)
        for pipe in pipes:
            msg = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
            if msg[0] != "ready":
                raise RuntimeError(f"producer worker failed to start: {msg[1]}")
        ptimeline.client = CpuClock([me] + [p.pid for p in procs if p.pid], children=False)
    main_timeline = ptimeline if w.mode == "produce" else ctimeline
    if w.mode != "produce":
        main_timeline.broker = broker_clock
        main_timeline.client = ptimeline.client

    t0 = time.monotonic_ns() + int(START_DELAY_S * 1e9)
    stop_ns = t0 + int(w.duration * 1e9) if w.duration > 0 else 0
    progress = Progress(w.progress, main_label)
    done_ends: list[float] = []
    tasks: list[asyncio.Future[Any]] = []

    def on_tick(timeline: Timeline) -> generator.EmitFn:
        return lambda k, end, iv: timeline.add(k, end, iv)

    # Producer side.
    producer_done = asyncio.Event()
    if w.mode != "consume":
        if use_procs:
            for pipe in pipes:
                pipe.send(("go", t0, stop_ns))
            tasks.append(asyncio.ensure_future(_collect(pipes, ptimeline, done_ends, producer_done)))
        else:
            reporter = generator.Reporter(on_tick(ptimeline), t0, w.interval)
            clock = generator.RecordClock(w.rate, w.messages, stop_ns, t0)

            async def produce_local() -> None:
                ticker = asyncio.ensure_future(reporter.run())
                try:
                    await generator.produce(cluster, w.topic, parts, w.connections, psettings, w.size, clock,
                                            reporter, stamped)
                finally:
                    reporter.finish()
                    await ticker
                    done_ends.append((reporter.end_ns - t0) / 1e9)
                    producer_done.set()

            tasks.append(asyncio.ensure_future(produce_local()))

    # Consumer side.
    state = None
    if w.mode != "produce":
        consume_stop = stop_ns if w.mode == "consume" else 0
        state = generator.ConsumeState(dict(start), latest if w.mode == "consume" else None,
                                       w.messages if w.mode == "consume" else 0, consume_stop)
        creporter = generator.Reporter(on_tick(ctimeline), t0, w.interval)

        async def consume_local() -> None:
            # Start with the tick clock (not before t0), so the first records count in tick 0.
            await asyncio.sleep(max(t0 - time.monotonic_ns(), 0) / 1e9)
            ticker = asyncio.ensure_future(creporter.run())
            try:
                await generator.consume(cluster, w.topic, parts, csettings, w.size, state, creporter,
                                        latency=w.mode == "e2e")
            finally:
                # e2e: the run ends with the last record, not with the long-poll that followed it
                done_by_count = state is not None and 0 < state.messages <= state.consumed
                creporter.finish(state.last_data_ns if done_by_count and w.mode == "e2e" else None)
                await ticker

        tasks.append(asyncio.ensure_future(consume_local()))
        if w.mode == "e2e":
            tasks.append(asyncio.ensure_future(_end_e2e(producer_done, ptimeline, state, w.idle_timeout)))

    ticker = asyncio.ensure_future(_progress(main_timeline, ptimeline, progress, t0, w, tasks))
    try:
        await asyncio.gather(*tasks)
    finally:
        ticker.cancel()
        progress.close()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    elapsed = max(main_timeline.ends.values(), default=0.0)
    main_timeline.sample_cpu(elapsed)
    extra: dict[str, Any] = {"requests": sum(iv.requests for iv in main_timeline.ticks.values())}
    if w.mode == "e2e":
        produced = sum(iv.records for iv in ptimeline.ticks.values())
        extra.update(produced=produced, lost=max(produced - (state.consumed if state else 0), 0),
                     produce_errors=sum(iv.errors for iv in ptimeline.ticks.values()))
    if w.mode == "consume":
        extra["end_reached"] = all(state.offsets[p] >= e for p, e in latest.items()) if state else False
    kind = {"produce": "produce->ack", "consume": "none", "e2e": "produce->consume"}[w.mode]
    result = main_timeline.total(w.mode, elapsed, w.warmup, kind, extra)
    return Outcome(w, result, main_timeline.rows(),
                   ptimeline.rows() if ptimeline is not main_timeline else [], notes)


async def _progress(main: Timeline, producer: Timeline, progress: Progress, t0: int, w: Workload,
                    tasks: list[asyncio.Future[Any]]) -> None:
    """Samples CPU at every tick boundary and prints the last complete tick."""
    k = 0
    main.sample_cpu(0.0)
    while True:
        target = t0 + int((k + 1) * w.interval * 1e9)
        await asyncio.sleep(max(target - time.monotonic_ns(), 0) / 1e9)
        main.sample_cpu((k + 1) * w.interval)
        await asyncio.sleep(min(0.05, w.interval / 4))  # let the workers' tick reports arrive
        if progress.enabled:
            row = main.row(k)  # one tick only: percentiles cost ~1.5 ms per histogram walk
            if row is not None:
                extra = ""
                if producer is not main and k in producer.ticks:
                    extra = f"  (produce {producer.ticks[k].records / w.interval:,.0f} msg/s)"
                progress.show(row, extra)
        k += 1


async def _collect(pipes: list[Pipe], timeline: Timeline, done_ends: list[float], done: asyncio.Event) -> None:
    """Receives the workers' ticks until every worker has said done."""
    loop = asyncio.get_running_loop()
    open_pipes = set(range(len(pipes)))
    finished = asyncio.Event()
    errors: list[str] = []

    def reader(i: int) -> None:
        try:
            msg = pipes[i].recv()
        except EOFError:
            msg = ("error", "worker exited without saying done")
        if msg[0] == "tick":
            _, k, end, data = msg
            timeline.add(k, end, Interval.from_wire(data))
            return
        if msg[0] == "error":
            errors.append(msg[1])
        elif msg[0] == "done":
            done_ends.append(msg[1])
        loop.remove_reader(pipes[i].fileno())
        open_pipes.discard(i)
        if not open_pipes:
            finished.set()

    for i, pipe in enumerate(pipes):
        loop.add_reader(pipe.fileno(), reader, i)
    try:
        await finished.wait()
    finally:
        done.set()
    if errors:
        raise RuntimeError("producer worker failed: " + "; ".join(errors))


async def _end_e2e(producer_done: asyncio.Event, producer: Timeline, state: generator.ConsumeState,
                   idle_timeout: float) -> None:
    """Once the producer ends, the consumer stops when it has everything or after idle_timeout
    without new records."""
    await producer_done.wait()
    state.messages = max(sum(iv.records for iv in producer.ticks.values()), 1)
    state.last_data_ns = max(state.last_data_ns, time.monotonic_ns())
    state.idle_ns = int(idle_timeout * 1e9)


async def _prefill(cluster: Cluster, w: Workload, parts: list[PartitionInfo],
                   settings: generator.ProducerSettings, count: int) -> None:
    """Writes `count` messages at full speed before a consume run (not measured)."""
    t0 = time.monotonic_ns()
    reporter = generator.Reporter(lambda k, end, iv: None, t0, 3600.0)
    clock = generator.RecordClock(0.0, count, 0, t0)
    acked = generator.ProducerSettings(**{**settings.__dict__, "acks": 1})
    await generator.produce(cluster, w.topic, parts, w.connections, acked, w.size, clock, reporter,
                            stamped=w.codec == 0)


def _worker_main(w: Workload, parts: list[PartitionInfo], rate: float, messages: int, stamped: bool,
                 pipe: Pipe) -> None:
    """Entry point of a producer worker process (spawned)."""
    try:
        import uvloop

        uvloop.run(_worker(w, parts, rate, messages, stamped, pipe))
    except ImportError:
        asyncio.run(_worker(w, parts, rate, messages, stamped, pipe))
    except BaseException as exc:  # report any failure to the coordinator instead of dying silently
        try:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass


async def _worker(w: Workload, parts: list[PartitionInfo], rate: float, messages: int, stamped: bool,
                  pipe: Pipe) -> None:
    cluster = await Cluster.connect(w.bootstrap)
    try:
        await cluster.metadata(w.topic)
        pprops, _ = resolve(w.producer_props, RAW_PRODUCER_PROPS)
        settings = generator.ProducerSettings.from_props(pprops, w.size, w.acks, w.codec)
        pipe.send(("ready",))
        _, t0, stop_ns = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        reporter = generator.Reporter(lambda k, end, iv: pipe.send(("tick", k, end, iv.to_wire())), t0, w.interval)
        clock = generator.RecordClock(rate, messages, stop_ns, t0)
        ticker = asyncio.ensure_future(reporter.run())
        try:
            await generator.produce(cluster, w.topic, parts, w.connections, settings, w.size, clock, reporter,
                                    stamped)
        finally:
            reporter.finish()
            await ticker
        pipe.send(("done", (reporter.end_ns - t0) / 1e9))
    finally:
        cluster.close()
