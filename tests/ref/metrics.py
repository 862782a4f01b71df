"""Reference RequestStats (ext/metrics.pyx): per-API log2-microsecond latency histograms of the
four request times, kept in plain dicts."""

from __future__ import annotations

import time

API_KEYS = 128
BUCKETS = 64
KINDS = 4  # total, queue, local, remote


def _bucket(dt_ns: int) -> int:
    return (dt_ns // 1000).bit_length()


class RequestStats:
    def __init__(self) -> None:
        self._counts: dict[int, list[list[int]]] = {}
        self._sums: dict[int, list[int]] = {}
        self.last_answer = 0

    def record(self, api: int, received: int, started: int, answered: int, now: int) -> None:
        if not 0 <= api < API_KEYS:
            return
        counts = self._counts.setdefault(api, [[0] * BUCKETS for _ in range(KINDS)])
        sums = self._sums.setdefault(api, [0] * KINDS)
        for kind, dt in enumerate((now - received, started - received, answered - started, now - answered)):
            dt = max(dt, 0)
            counts[kind][_bucket(dt)] += 1
            sums[kind] += dt

    def done(self, api: int, received: int) -> None:
        now = time.monotonic_ns()
        self.record(api, received, max(received, self.last_answer), now, now)
        self.last_answer = now

    def park(self, received: int) -> tuple[int, int]:
        now = time.monotonic_ns()
        started = max(received, self.last_answer)
        self.last_answer = now
        return started, now

    def parked(self, api: int, received: int, started: int, answered: int) -> None:
        now = time.monotonic_ns()
        self.record(api, received, started, answered, now)
        self.last_answer = max(self.last_answer, now)

    def snapshot(self) -> dict[int, tuple[list[list[int]], list[int]]]:
        return {api: ([list(c) for c in self._counts[api]], list(self._sums[api])) for api in sorted(self._counts)}
