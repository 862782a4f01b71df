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

What the librdkafka client shares with it (prefill, e2e end, progress, `Outcome`) is in
phases.py; this module only picks the client (`--client librdkafka` runs rdkafka.py).

All processes of a run share CLOCK_MONOTONIC (one host), so ticks and latency stamps line up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

from pyk.bench import generator
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
from pyk.bench.workload import RAW_CONSUMER_PROPS, RAW_PRODUCER_PROPS, Workload, resolve
from pyk.client import Cluster, PartitionInfo


def run(w: Workload, broker_pids: list[int] | None = None) -> Outcome:
    """Runs `w` to completion (blocking) and returns its outcome."""
    try:
        import uvloop

        return uvloop.run(_run(w, broker_pids or []))
    except ImportError:  # uvloop is a pyk dependency; plain asyncio where it cannot install
        return asyncio.run(_run(w, broker_pids or []))


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
            await prefill(cluster, w, parts, psettings, count)
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
            tasks.append(asyncio.ensure_future(end_e2e(producer_done, ptimeline, state, w.idle_timeout)))

    ticker = asyncio.ensure_future(tick_progress(main_timeline, ptimeline, progress, t0, w))
    try:
        await asyncio.gather(*tasks)
    finally:
        ticker.cancel()
        progress.close()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
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
