"""Reference RequestStats and InflightResponses (ext/metrics.pyx): per-API log2-microsecond
latency histograms of the six request times, kept in plain dicts, and a connection's answered
responses not yet written, in a deque."""

from __future__ import annotations

import time
from collections import deque

API_KEYS = 128
BUCKETS = 64
KINDS = 6  # total, request queue, local, remote, response queue, response send
LOCAL = 2
NOT_DUE = 2**63 - 1


def _bucket(dt_ns: int) -> int:
    return (dt_ns // 1000).bit_length()


class RequestStats:
    def __init__(self) -> None:
        self._counts: dict[int, list[list[int]]] = {}
        self._sums: dict[int, list[int]] = {}
        self.last_answer = 0

    def _observe(self, kind: int, api: int, dt: int) -> None:
        counts = self._counts.setdefault(api, [[0] * BUCKETS for _ in range(KINDS)])
        sums = self._sums.setdefault(api, [0] * KINDS)
        dt = max(dt, 0)
        counts[kind][_bucket(dt)] += 1
        sums[kind] += dt

    def _local(self, api: int, received: int, started: int, returned: int, answered: int) -> None:
        for kind, dt in ((1, started - received), (LOCAL, returned - started), (3, answered - returned)):
            self._observe(kind, api, dt)

    def _sent(self, api: int, received: int, answered: int, handed: int, sent: int) -> None:
        for kind, dt in ((0, sent - received), (4, handed - answered), (5, sent - handed)):
            self._observe(kind, api, dt)

    def _answered(self, api: int, received: int, started: int, returned: int, answered: int,
                  inflight: InflightResponses | None) -> None:
        if not 0 <= api < API_KEYS:
            return
        self._local(api, received, started, returned, answered)
        if inflight is None or not inflight.push(self, api, received, answered):
            self._sent(api, received, answered, answered, answered)

    def record(self, api: int, received: int, started: int, returned: int, answered: int, handed: int,
               sent: int) -> None:
        if 0 <= api < API_KEYS:
            self._local(api, received, started, returned, answered)
            self._sent(api, received, answered, handed, sent)

    def done(self, api: int, received: int, inflight: InflightResponses | None) -> None:
        now = time.monotonic_ns()
        self._answered(api, received, max(received, self.last_answer), now, now, inflight)
        self.last_answer = now

    def park(self, received: int) -> tuple[int, int]:
        now = time.monotonic_ns()
        started = max(received, self.last_answer)
        self.last_answer = now
        return started, now

    def parked(self, api: int, received: int, started: int, returned: int, inflight: InflightResponses | None) -> None:
        now = time.monotonic_ns()
        self._answered(api, received, started, returned, now, inflight)
        self.last_answer = max(self.last_answer, now)

    def snapshot(self) -> dict[int, tuple[list[list[int]], list[int]]]:
        return {api: ([list(c) for c in self._counts[api]], list(self._sums[api]))
                for api in sorted(self._counts) if sum(self._counts[api][LOCAL])}


class InflightResponses:
    def __init__(self) -> None:
        self._stats: RequestStats | None = None
        self._waiting: deque[list[int]] = deque()  # [api, received, answered, handed, end]
        self._handed = 0
        self._closed = False

    def push(self, stats: RequestStats, api: int, received: int, answered: int) -> bool:
        if self._closed:
            return False
        self._stats = stats
        self._waiting.append([api, received, answered, 0, 0])
        return True

    def _due(self) -> int:
        return self._waiting[0][4] if self._handed else NOT_DUE

    def handed(self, parts: int) -> int:
        for i in range(self._handed, len(self._waiting)):
            assert self._stats is not None
            self._waiting[i][3:] = [self._stats.last_answer, parts]
        self._handed = len(self._waiting)
        return self._due()

    def written(self, parts: int) -> int:
        now = time.monotonic_ns()
        while self._handed and self._waiting[0][4] <= parts:
            api, received, answered, handed, _ = self._waiting.popleft()
            assert self._stats is not None
            self._stats._sent(api, received, answered, handed, now)
            self._handed -= 1
        return self._due()

    def close(self) -> None:
        self.handed(0)
        self.written(NOT_DUE)
        self._closed = True

    def __len__(self) -> int:
        return len(self._waiting)
