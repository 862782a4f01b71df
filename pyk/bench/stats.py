"""Measurements of one bench run: counters, latency histograms, CPU, the per-interval timeline.

Owns:
* `Latency`: an HDR histogram (the `hdrhistogram` package: log-linear buckets, 3 significant
  digits, 1 µs .. 10 min) recording microseconds, with a weight per value so that one batch of
  n records records n values in one call.  Histograms cross process boundaries encoded
  (`encode`/`decode`, HdrHistogram's compressed base64 form) and merge with `add`.
* `Interval`: what one worker measured during one tick (records, bytes, errors, latency).
* `Timeline`: the run's ticks merged over workers, the totals after warm-up, and the
  `Result` the report prints.
* `CpuClock`: utime + stime of a set of processes from /proc/PID/stat (broker CPU with
  `--broker-pid`, including the pids' children, so a broker's worker processes count).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000  # 10 minutes
DIGITS = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Latency:
    """A latency distribution in microseconds (HDR histogram); one owner, not thread-safe."""

    __slots__ = ("hist",)

    def __init__(self) -> None:
        self.hist = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    def record_ns(self, ns: int, count: int = 1) -> None:
        us = ns // 1000
        self.hist.record_value(min(max(us, LOWEST_US), HIGHEST_US), count)

    def record_spread_ns(self, received_ns: int, first_due_ns: int, last_due_ns: int, count: int) -> None:
        """Latencies of `count` records due evenly between first_due and last_due, all received
        at received_ns: up to 8 evenly spaced values, each weighted by its share of the records."""
        if count <= 0:
            return
        points = min(count, 8)
        step = (last_due_ns - first_due_ns) / max(points - 1, 1)
        base, extra = divmod(count, points)
        for i in range(points):
            self.record_ns(received_ns - int(first_due_ns + i * step), base + (1 if i < extra else 0))

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def add(self, other: Latency) -> None:
        if other.count:
            self.hist.add(other.hist)

    def encode(self) -> bytes:
        return bytes(self.hist.encode()) if self.count else b""

    @classmethod
    def decode(cls, data: bytes) -> Latency:
        lat = cls()
        if data:
            lat.hist = HdrHistogram.decode(data)
        return lat

    def percentiles_ms(self, *pcts: float) -> list[float | None]:
        """Several percentiles in one walk over the buckets (each walk costs ~1.5 ms in the
        pure-Python histogram: never call this per record, and not on a hot event loop more
        than once per tick)."""
        if not self.count:
            return [None] * len(pcts)
        values = self.hist.get_percentile_to_value_dict(list(pcts))
        return [values[p] / 1000.0 for p in pcts]

    def summary_ms(self) -> dict[str, float | None]:
        if not self.count:
            return {"p50": None, "p99": None, "p99.9": None, "max": None, "mean": None}
        p50, p99, p999 = self.percentiles_ms(50, 99, 99.9)
        return {
            "p50": p50,
            "p99": p99,
            "p99.9": p999,
            "max": self.hist.get_max_value() / 1000.0,
            "mean": self.hist.get_mean_value() / 1000.0,
        }


@dataclass
class Interval:
    """One worker's measurements over one tick (tick k covers [start + k*dt, start + (k+1)*dt))."""

    records: int = 0
    bytes: int = 0
    requests: int = 0
    errors: int = 0
    latency: Latency = field(default_factory=Latency)
    error_codes: dict[int, int] = field(default_factory=dict)

    def add(self, other: Interval) -> None:
        self.records += other.records
        self.bytes += other.bytes
        self.requests += other.requests
        self.errors += other.errors
        self.latency.add(other.latency)
        for code, n in other.error_codes.items():
            self.error_codes[code] = self.error_codes.get(code, 0) + n

    def error(self, code: int, n: int = 1) -> None:
        self.errors += n
        self.error_codes[code] = self.error_codes.get(code, 0) + n

    def to_wire(self) -> tuple[Any, ...]:
        return (self.records, self.bytes, self.requests, self.errors, self.latency.encode(), self.error_codes)

    @classmethod
    def from_wire(cls, data: tuple[Any, ...]) -> Interval:
        records, nbytes, requests, errors, hist, codes = data
        return cls(records, nbytes, requests, errors, Latency.decode(hist), dict(codes))


def _children(pids: set[int]) -> set[int]:
    """pids plus every live descendant (a broker's worker processes count as the broker)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    out = set(pids)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in out and pid not in out:
                out.add(pid)
                grew = True
    return out


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process in seconds (None if it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


class CpuClock:
    """Cumulative CPU seconds of some processes and their descendants.

    Each sample remembers every pid's last reading, so a child that exits between two samples
    keeps the CPU it had used at the previous one (what it burned after that is lost: a bound on
    the error, not a bias for long-lived brokers)."""

    RESCAN_EVERY = 5  # samples between walks of /proc for new children (a walk costs ~5 ms)

    def __init__(self, pids: list[int], children: bool = True) -> None:
        self.roots = set(pids)
        self.children = children
        self._last: dict[int, float] = {}
        self._pids: set[int] = set(pids)
        self._samples = 0

    def seconds(self) -> float:
        if self.children and self._samples % self.RESCAN_EVERY == 0:
            self._pids = _children(self.roots)
        self._samples += 1
        for pid in self._pids:
            value = process_cpu_seconds(pid)
            if value is not None:
                self._last[pid] = value
        return sum(self._last.values())


@dataclass
class Result:
    """The totals of one workload run (what the table and the JSON report)."""

    mode: str
    records: int
    bytes: int
    seconds: float
    msgs_per_s: float
    mb_per_s: float
    latency_ms: dict[str, float | None]
    latency_kind: str
    errors: int
    error_codes: dict[str, int]
    broker_cpu_pct: float | None
    client_cpu_pct: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tick:
    """One row of the timeline (all workers merged)."""

    t: float
    msgs_per_s: float
    mb_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    broker_cpu_pct: float | None
    client_cpu_pct: float | None


class Timeline:
    """Per-tick measurements of one run, merged over workers; owned by the coordinating process."""

    def __init__(self, interval_s: float, broker: CpuClock | None, client: CpuClock) -> None:
        self.interval_s = interval_s
        self.ticks: dict[int, Interval] = {}
        self.ends: dict[int, float] = {}  # tick -> latest end reported (seconds from t0)
        self.broker = broker
        self.client = client
        self.cpu: list[tuple[float, float | None, float]] = []  # (t, broker s, client s) per sample

    def add(self, tick: int, end_s: float, interval: Interval) -> None:
        """Merges one worker's report of `tick`, which ended at end_s (a last tick may end early)."""
        if tick in self.ticks:
            self.ticks[tick].add(interval)
        else:
            self.ticks[tick] = interval
        self.ends[tick] = max(self.ends.get(tick, 0.0), end_s)

    def sample_cpu(self, t: float) -> None:
        self.cpu.append((t, self.broker.seconds() if self.broker else None, self.client.seconds()))

    def _cpu_pct(self, t0: float, t1: float, which: int) -> float | None:
        """CPU % (100 = one core) between the samples nearest to t0 and t1."""
        if len(self.cpu) < 2:
            return None
        a = min(self.cpu, key=lambda s: abs(s[0] - t0))
        b = min(self.cpu, key=lambda s: abs(s[0] - t1))
        start, end = a[which], b[which]
        if b[0] <= a[0] or start is None or end is None:
            return None
        return 100.0 * (end - start) / (b[0] - a[0])

    def row(self, k: int) -> Tick | None:
        """Tick k as a timeline row (None if nothing was reported for it, or it is a sliver)."""
        iv = self.ticks.get(k)
        if iv is None:
            return None
        t0, t1 = k * self.interval_s, min((k + 1) * self.interval_s, self.ends[k])
        span = t1 - t0
        if span < self.interval_s / 10:  # a sliver at the very end: its rate would be noise
            return None
        p50, p99 = iv.latency.percentiles_ms(50, 99)
        return Tick(
            t=round(t1, 3), msgs_per_s=iv.records / span, mb_per_s=iv.bytes / span / 1e6, p50_ms=p50, p99_ms=p99,
            broker_cpu_pct=self._cpu_pct(t0, t1, 1), client_cpu_pct=self._cpu_pct(t0, t1, 2))  # fmt: skip

    def rows(self) -> list[Tick]:
        return [row for row in (self.row(k) for k in sorted(self.ticks)) if row is not None]

    def total(self, mode: str, elapsed_s: float, warmup_s: float, latency_kind: str,
              extra: dict[str, Any] | None = None) -> Result:
        """Totals over [warmup, elapsed): ticks starting before the warm-up ends are left out."""
        first = int(round(warmup_s / self.interval_s)) if warmup_s > 0 else 0
        total = Interval()
        for k, iv in self.ticks.items():
            if k >= first:
                total.add(iv)
        seconds = max(elapsed_s - first * self.interval_s, 1e-9)
        return Result(
            mode=mode, records=total.records, bytes=total.bytes, seconds=round(seconds, 3),
            msgs_per_s=total.records / seconds, mb_per_s=total.bytes / seconds / 1e6,
            latency_ms=total.latency.summary_ms(), latency_kind=latency_kind, errors=total.errors,
            error_codes={_code_name(c): n for c, n in sorted(total.error_codes.items())},
            broker_cpu_pct=self._cpu_pct(first * self.interval_s, elapsed_s, 1),
            client_cpu_pct=self._cpu_pct(first * self.interval_s, elapsed_s, 2),
            extra=dict(extra or {}))  # fmt: skip


def _code_name(code: int) -> str:
    from pyk.errors import ErrorCode

    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)
