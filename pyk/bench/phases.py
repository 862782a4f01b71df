"""The phases and results a bench run shares between its clients (`--client raw` in runner.py,
`--client librdkafka` in rdkafka.py).

Owns what does not depend on the client: the start delay, the unmeasured prefill of an empty
topic before a consume run (always with the raw producer), the e2e end condition, the per-tick
progress line, and the `Outcome` of a run.  runner.py and rdkafka.py both import this module;
neither imports the other except runner choosing the client.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pyk.bench import generator
from pyk.bench.stats import Result, Tick, Timeline
from pyk.bench.workload import Workload
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


async def tick_progress(main: Timeline, producer: Timeline, progress: Progress, t0: int, w: Workload) -> None:
    """Samples CPU at every tick boundary and prints the last complete tick (runs until cancelled)."""
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


async def end_e2e(producer_done: asyncio.Event, producer: Timeline, state: generator.ConsumeState,
                  idle_timeout: float) -> None:
    """Once the producer ends, the consumer stops when it has everything or after idle_timeout
    without new records."""
    await producer_done.wait()
    state.messages = max(sum(iv.records for iv in producer.ticks.values()), 1)
    state.last_data_ns = max(state.last_data_ns, time.monotonic_ns())
    state.idle_ns = int(idle_timeout * 1e9)


async def prefill(cluster: Cluster, w: Workload, parts: list[PartitionInfo],
                  settings: generator.ProducerSettings, count: int) -> None:
    """Writes `count` messages at full speed before a consume run (not measured)."""
    t0 = time.monotonic_ns()
    reporter = generator.Reporter(lambda k, end, iv: None, t0, 3600.0)
    clock = generator.RecordClock(0.0, count, 0, t0)
    acked = generator.ProducerSettings(**{**settings.__dict__, "acks": 1})
    await generator.produce(cluster, w.topic, parts, w.connections, acked, w.size, clock, reporter,
                            stamped=w.codec == 0)
