"""What a bench run leaves behind: the table on stdout, the JSON file, the PNG plots.

Owns the presentation of `runner.Outcome`s and sweep points; no measuring happens here.
Plots use matplotlib (the `plot` extra) with the Agg backend, imported only when a plot is
asked for, so `pyk bench` runs without it.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pyk.bench.runner import Outcome

COLUMNS = ("msgs/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "broker CPU", "client CPU", "errors")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(outcome: Outcome) -> list[str]:
    r = outcome.result
    lat = r.latency_ms
    return [
        _fmt(r.msgs_per_s, ",.0f"), _fmt(r.mb_per_s, ".1f"), _fmt(lat["p50"], ".2f"), _fmt(lat["p99"], ".2f"),
        _fmt(lat["p99.9"], ".2f"), _fmt(lat["max"], ".2f"),
        _fmt(r.broker_cpu_pct, ".0f") + ("%" if r.broker_cpu_pct is not None else ""),
        _fmt(r.client_cpu_pct, ".0f") + ("%" if r.client_cpu_pct is not None else ""),
        str(r.errors),
    ]  # fmt: skip


def spread(outcomes: Sequence[Outcome]) -> str:
    """min-max msgs/s over several runs of one point."""
    rates = [o.result.msgs_per_s for o in outcomes]
    return f"{min(rates):,.0f}-{max(rates):,.0f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    out.write(line + "\n" + "-" * len(line) + "\n")
    for r in rows:
        out.write("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                  + "\n")


def print_outcome(outcome: Outcome, out: TextIO) -> None:
    r = outcome.result
    w = outcome.workload
    label = f"{w.mode} {w.client}"
    table(("workload", *COLUMNS), [[label, *row(outcome)]], out)
    out.write(f"records {r.records:,} in {r.seconds:.2f} s; latency: {r.latency_kind}")
    for key, value in r.extra.items():
        out.write(f"; {key} {value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"; {key} {value}")
    out.write("\n")
    if r.error_codes:
        out.write("errors: " + ", ".join(f"{k} x{v}" for k, v in r.error_codes.items()) + "\n")
    for note in outcome.notes:
        out.write(f"note: {note}\n")


def write_json(path: str, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def can_plot() -> bool:
    """matplotlib is the optional `plot` extra; checked before a run, not after it."""
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(outcome: Outcome, path: str) -> None:
    """Throughput (and the producer's, for e2e) and p50/p99 latency over time, plus CPU if known."""
    plt = _pyplot()
    rows = outcome.timeline
    has_cpu = any(t.broker_cpu_pct is not None or t.client_cpu_pct is not None for t in rows)
    fig, axes = plt.subplots(3 if has_cpu else 2, 1, figsize=(9, 8 if has_cpu else 6), sharex=True)
    t = [r.t for r in rows]
    w = outcome.workload
    ax = axes[0]
    ax.plot(t, [r.msgs_per_s for r in rows], marker=".", label=f"{w.mode} msgs/s")
    if outcome.producer_timeline:
        pt = outcome.producer_timeline
        ax.plot([r.t for r in pt], [r.msgs_per_s for r in pt], marker=".", linestyle="--", label="produce msgs/s")
    ax.set_ylabel("msgs/s")
    ax.set_ylim(bottom=0)
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"pyk bench {w.mode} ({w.client}) {w.size} B x {w.partitions} partition(s) -> {w.bootstrap}")
    ax = axes[1]
    for key, name in (("p50_ms", "p50"), ("p99_ms", "p99")):
        values = [getattr(r, key) for r in rows]
        if any(v is not None for v in values):
            ax.plot(t, [v if v is not None else float("nan") for v in values], marker=".", label=name)
    ax.set_ylabel(f"latency ms ({outcome.result.latency_kind})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if has_cpu:
        ax = axes[2]
        for key, name in (("broker_cpu_pct", "broker"), ("client_cpu_pct", "client")):
            values = [getattr(r, key) for r in rows]
            if any(v is not None for v in values):
                ax.plot(t, [v if v is not None else float("nan") for v in values], marker=".", label=name)
        ax.set_ylabel("CPU % (100 = 1 core)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="best")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(key: str, points: Sequence[tuple[str, Outcome]], path: str) -> None:
    """Throughput and latency percentiles against the swept values (categorical axis)."""
    plt = _pyplot()
    labels = [v for v, _ in points]
    x = list(range(len(points)))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    ax1.plot(x, [o.result.msgs_per_s for _, o in points], marker="o", label="msgs/s")
    ax1.set_ylabel("msgs/s")
    ax1.set_ylim(bottom=0)
    ax1.grid(True, alpha=0.3)
    cpu = [o.result.broker_cpu_pct for _, o in points]
    if any(c is not None for c in cpu):
        twin = ax1.twinx()
        twin.plot(x, [c if c is not None else float("nan") for c in cpu], marker="s", color="tab:red",
                  linestyle=":", label="broker CPU %")
        twin.set_ylabel("broker CPU %")
        twin.legend(loc="upper right")
    ax1.legend(loc="upper left")
    w = points[0][1].workload if points else None
    if w is not None:
        ax1.set_title(f"pyk bench sweep {key}: {w.mode} ({w.client}) {w.size} B x {w.partitions} partition(s)")
    for pct in ("p50", "p99", "p99.9"):
        values = [o.result.latency_ms[pct] for _, o in points]
        if any(v is not None for v in values):
            ax2.plot(x, [v if v is not None else float("nan") for v in values], marker="o", label=pct)
    ax2.set_ylabel(f"latency ms ({points[0][1].result.latency_kind if points else ''})")
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(loc="best")
        ax2.set_yscale("log")
    ax2.grid(True, alpha=0.3)
    ax2.set_xticks(x, labels)
    ax2.set_xlabel(key)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
