"""The overview's history: the broker's own counters, differenced every few seconds, kept for a few minutes.

Every `interval_s` the sampler takes the shards' metrics snapshots from the orchestrator (the
`collect_metrics` whose answer the Prometheus endpoint renders, pyk.server.exporter) and keeps,
per interval, what an operator reads off Kafka's BrokerTopicMetrics and RequestMetrics: bytes in
and out and messages in per second, and the p50 and p99 of the Produce and Fetch requests'
TotalTime (read to last byte written; a Fetch's includes its long poll, as in Kafka).  The
percentiles come from the difference of two snapshots' histograms, so they cover exactly the
interval (Kafka's own come from a decaying sample of recent requests).  Only the rates are kept,
plus each shard's last snapshot to difference the next one against.

Counters are differenced per shard and partition.  A restarted shard (a new `started_ns`)
counts everything anew; within a shard, Prometheus' reset rule (a counter that went down
restarted from zero) covers a partition that moves between shards (the balancer) or is
recreated.  A shard that misses a round (it did not answer in time, or is restarting) is
differenced against its last answer at the next, so its traffic is counted late but not lost:
the charts add up to what the clients moved, less what a crashed shard moved after its last
answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from pyk.protocol import ApiKey
from pyk.server.metrics import HISTOGRAM_BUCKETS, TOTAL_TIME, PartitionStats, ShardSnapshot

log = logging.getLogger("pyk.console")

INTERVAL_S = 2.0
WINDOW_S = 300.0  # 5 minutes of history
COLLECT_TIMEOUT_S = 5.0  # a shard that does not answer within this is differenced at the next round
TOP_TOPICS = 5  # the messages chart draws the busiest topics, the rest are summed in the total
LATENCIES = {"Produce": ApiKey.PRODUCE, "Fetch": ApiKey.FETCH}
QUANTILES = {"p50": 0.5, "p99": 0.99}


class SnapshotSource(Protocol):
    """The orchestrator as the sampler needs it (pyk.server.shard.Orchestrator)."""

    async def collect_metrics(self, timeout: float) -> list[ShardSnapshot]: ...


@dataclass(frozen=True, slots=True)
class Interval:
    """The broker's rates over one sampling interval, ending `at` (wall clock, s)."""

    at: float
    bytes_in: float  # per second, all topics (BytesInPerSec)
    bytes_out: float  # BytesOutPerSec
    messages_in: float  # MessagesInPerSec
    topic_messages_in: dict[str, float]
    latency_ms: dict[str, float | None]  # "Produce p99" -> ms; None: no such request was answered
    cpu_percent: dict[int, float]  # shard -> CPU time over the interval, percent of one core


class Series(TypedDict):
    """uPlot-ready columns of /api/series: one chart per group, one line per name."""

    times: list[float]
    bytes: dict[str, list[float]]
    messages: dict[str, list[float]]
    latency: dict[str, list[float | None]]


def counter_delta(now: int, before: int | None) -> int:
    """Prometheus' reset rule: a counter that went down restarted from zero; a new one from zero."""
    return now if before is None or now < before else now - before


def histogram_delta(now: list[int], before: list[int] | None) -> list[int]:
    if before is None or any(n < b for n, b in zip(now, before, strict=True)):
        return now
    return [n - b for n, b in zip(now, before, strict=True)]


def quantile_ms(buckets: list[int], q: float) -> float | None:
    """The q-quantile of a log2-microsecond histogram (bucket b: 2**(b-1) <= dt_us < 2**b), in ms,
    interpolated linearly inside its bucket as Prometheus' histogram_quantile does; None if empty."""
    total = sum(buckets)
    if not total:
        return None
    rank, below = q * total, 0
    for b, n in enumerate(buckets):
        if n and below + n >= rank:
            low = (1 << b) >> 1
            return (low + ((1 << b) - low) * (rank - below) / n) / 1000
        below += n
    raise AssertionError("unreachable: rank <= total")


@dataclass
class Sampler:
    """Runs on the orchestrator's event loop from `start()` to `stop()`."""

    source: SnapshotSource
    interval_s: float = INTERVAL_S
    intervals: deque[Interval] = field(default_factory=lambda: deque(maxlen=int(WINDOW_S / INTERVAL_S)))
    last: dict[int, ShardSnapshot] = field(default_factory=dict)  # shard -> its last answer
    round_at: float | None = None  # when the last round started
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            at = time.time()  # before: every counter in the answers was read after `at`
            self.record(at, await self.source.collect_metrics(COLLECT_TIMEOUT_S))
            await asyncio.sleep(self.interval_s)

    def record(self, at: float, snapshots: list[ShardSnapshot]) -> None:
        """Adds the interval since the previous round (nothing on the first)."""
        previous_at, self.round_at = self.round_at, at
        bytes_in = bytes_out = messages_in = 0
        topics: dict[str, int] = {}
        latency = {name: [0] * HISTOGRAM_BUCKETS for name in LATENCIES}
        cpu: dict[int, float] = {}
        for now in snapshots:
            before = self.last.get(now.shard)
            self.last[now.shard] = now
            if before is None:  # its first answer: the baseline
                continue
            restarted = before.started_ns != now.started_ns
            old: dict[tuple[str, int], PartitionStats] = {} if restarted else {
                (p.topic, p.partition): p for p in before.partitions}
            for p in now.partitions:
                o = old.get((p.topic, p.partition))
                bytes_in += counter_delta(p.bytes_in, o.bytes_in if o else None)
                bytes_out += counter_delta(p.bytes_out, o.bytes_out if o else None)
                n = counter_delta(p.messages_in, o.messages_in if o else None)
                messages_in += n
                topics[p.topic] = topics.get(p.topic, 0) + n
            for name, api in LATENCIES.items():
                if api in now.requests:
                    was = None if restarted else before.requests.get(api)
                    delta = histogram_delta(now.requests[api][0][TOTAL_TIME], was[0][TOTAL_TIME] if was else None)
                    latency[name] = [a + b for a, b in zip(latency[name], delta, strict=True)]
            cpu[now.shard] = now.cpu_seconds - (0.0 if restarted else before.cpu_seconds)
        if previous_at is None:
            return
        dt = max(at - previous_at, 1e-3)
        self.intervals.append(Interval(
            at, bytes_in / dt, bytes_out / dt, messages_in / dt, {t: n / dt for t, n in topics.items()},
            {f"{name} {q}": quantile_ms(latency[name], quantile) for name in LATENCIES
             for q, quantile in QUANTILES.items()},
            {shard: 100.0 * seconds / dt for shard, seconds in cpu.items()}))

    def series(self) -> Series:
        rows = list(self.intervals)
        moved: dict[str, float] = {}
        for r in rows:
            for topic, rate in r.topic_messages_in.items():
                moved[topic] = moved.get(topic, 0.0) + rate
        busiest = sorted((t for t in moved if moved[t] > 0), key=lambda t: -moved[t])[:TOP_TOPICS]
        names = [f"{name} {q}" for name in LATENCIES for q in QUANTILES]
        return {
            "times": [r.at for r in rows],
            "bytes": {"in": [r.bytes_in for r in rows], "out": [r.bytes_out for r in rows]},
            "messages": {"total": [r.messages_in for r in rows],
                         **{t: [r.topic_messages_in.get(t, 0.0) for r in rows] for t in busiest}},
            "latency": {name: [r.latency_ms[name] for r in rows] for name in names},
        }
