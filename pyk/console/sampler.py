"""The overview's history: log end offsets sampled every few seconds, kept for a few minutes.

The console keeps its own series rather than reading a metrics endpoint, so it needs nothing
but the Kafka protocol: every `interval_s` one Metadata request and one ListOffsets request per
node give each partition's log end offset; the difference between two samples is the number of
messages appended in between.  The round trip of those requests, per node, is the latency an
admin client sees from each shard (a busy shard's event loop answers late).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pyk.client import Cluster
from pyk.console.kafka import LATEST, ConsoleClient
from pyk.protocol import ApiKey

log = logging.getLogger("pyk.console")

INTERVAL_S = 2.0
WINDOW_S = 300.0  # 5 minutes of history
TOP_TOPICS = 5  # the throughput chart draws the busiest topics, the rest are summed in the total


@dataclass
class Sample:
    """One sampling round: when, each partition's log end offset, each node's round trip (ms)."""

    at: float  # wall clock (s)
    ends: dict[tuple[str, int], int]
    latency_ms: dict[int, float]


@dataclass
class Sampler:
    """Runs on the orchestrator's event loop from `start()` to `stop()`; a failed round is
    logged at debug level and skipped (the broker may be starting or a shard restarting)."""

    client: ConsoleClient
    interval_s: float = INTERVAL_S
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=int(WINDOW_S / INTERVAL_S) + 1))
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                self.samples.append(await self.client.run(self._sample))
            except (ConnectionError, OSError, RuntimeError) as exc:
                log.debug("console sample failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def _sample(self, cluster: Cluster) -> Sample:
        at = time.time()
        md = await self.client.metadata(cluster)
        leaders = self.client.leaders(md)
        latency: dict[int, float] = {}
        ends: dict[tuple[str, int], int] = {}
        for node in sorted(b["node_id"] for b in md["brokers"]):
            mine = {tp: leader for tp, leader in leaders.items() if leader == node}
            started = time.perf_counter()
            if mine:
                ends.update(await self.client.offsets(cluster, mine, LATEST))
            else:  # a node leading nothing still answers: time an ApiVersions instead
                conn = await cluster.connection(node)
                await conn.request(ApiKey.API_VERSIONS, 0, {})
            latency[node] = (time.perf_counter() - started) * 1000
        return Sample(at, ends, latency)

    def series(self) -> dict[str, Any]:
        """uPlot-ready columns: times, messages/s in total and for the busiest topics, and the
        round trip per node."""
        samples = list(self.samples)
        pairs = list(zip(samples, samples[1:], strict=False))
        times = [b.at for _, b in pairs]
        per_topic: dict[str, list[float]] = {}
        total: list[float] = []
        for i, (a, b) in enumerate(pairs):
            dt = max(b.at - a.at, 1e-3)
            sums: dict[str, int] = {}
            for tp, end in b.ends.items():
                before = a.ends.get(tp)
                if before is not None and end >= before:
                    sums[tp[0]] = sums.get(tp[0], 0) + end - before
            for topic, n in sums.items():
                per_topic.setdefault(topic, [0.0] * len(pairs))[i] = n / dt
            total.append(sum(sums.values()) / dt)
        busiest = sorted(per_topic, key=lambda t: -sum(per_topic[t]))[:TOP_TOPICS]
        nodes = sorted({n for s in samples for n in s.latency_ms})
        return {
            "times": times,
            "throughput": {"total": total, **{t: per_topic[t] for t in busiest}},
            "latency": {str(n): [b.latency_ms.get(n) for _, b in pairs] for n in nodes},
        }
