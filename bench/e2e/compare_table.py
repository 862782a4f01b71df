"""Medians table of a bench/e2e/compare.sh run: pyk against Apache Kafka and Tansu.

    python3 bench/e2e/compare_table.py OUTDIR

Reads OUTDIR/<broker>.<pass>.txt (kbench.sh, one pass each) and <broker>.tools.<pass>.txt
(kafkatools.sh); prints markdown: per workload the median msgs/s of each broker, pyk's ratio to
each, median p99 and median broker CPU per MB (CPU milliseconds per MB of message value, from
the per-pass broker CPU % and MB/s).
"""

import statistics
import sys
from pathlib import Path

BROKERS = ("pyk", "kafka", "tansu")
Run = dict[str, float | None]


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def run(msgs: str, mb: str, p99: str, cpu: str) -> Run:
    mb_s, cpu_pct = number(mb), number(cpu)
    per_mb = cpu_pct * 10 / mb_s if cpu_pct is not None and mb_s else None  # % -> ms CPU per s, per MB/s
    return {"msgs": number(msgs), "p99": number(p99), "cpu_mb": per_mb}


def kbench(path: Path) -> dict[str, Run]:
    rows = {}
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) == 7 and not line.startswith(("#", " ")) and f[0] != "workload":
            rows[f[0]] = run(f[1], f[2], f[4], f[5])
    return rows


def tools(path: Path) -> dict[str, Run]:
    rows = {}
    for line in path.read_text().splitlines():
        kv = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "msgs_s" in kv:
            rows[kv["tool"]] = run(kv["msgs_s"], kv["MB_s"], kv["p99_ms"], kv["brkCPU"])
    return rows


def medians(out: Path, pattern: str, parse) -> dict[tuple[str, str], Run]:
    """(broker, row) -> the median of each value over the passes."""
    runs: dict[tuple[str, str], list[Run]] = {}
    for broker in BROKERS:
        for path in sorted(out.glob(pattern.format(broker=broker))):
            for row, values in parse(path).items():
                runs.setdefault((broker, row), []).append(values)
    return {
        key: {
            k: statistics.median(vs) if (vs := [r[k] for r in rs if r[k] is not None]) else None
            for k in rs[0]
        }
        for key, rs in runs.items()
    }


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(title: str, meds: dict[tuple[str, str], Run]) -> None:
    brokers = [b for b in BROKERS if any(k[0] == b for k in meds)]
    rows = list(dict.fromkeys(k[1] for k in meds))
    names = {"pyk": "pyk", "kafka": "Kafka", "tansu": "Tansu"}
    others = [b for b in brokers if b != "pyk"]
    print(f"\n{title}\n")
    print(
        "| workload | "
        + " | ".join(f"{names[b]} msgs/s" for b in brokers)
        + "".join(f" | pyk/{names[b]}" for b in others)
        + " | p99 ms "
        + " / ".join(names[b] for b in brokers)
        + " | broker CPU ms/MB "
        + " / ".join(names[b] for b in brokers)
        + " |"
    )
    print("|---" * (1 + 2 * len(brokers) - 1 + 2) + "|")
    for row in rows:
        m = {b: meds.get((b, row), {"msgs": None, "p99": None, "cpu_mb": None}) for b in brokers}
        ratios = []
        for b in others:
            p, o = m["pyk"]["msgs"], m[b]["msgs"]
            ratios.append(f"{p / o:.2f}x" if p is not None and o else "-")
        print(
            f"| {row} | "
            + " | ".join(fmt(m[b]["msgs"], ",.0f") for b in brokers)
            + "".join(f" | {r}" for r in ratios)
            + " | "
            + " / ".join(fmt(m[b]["p99"], ".1f") for b in brokers)
            + " | "
            + " / ".join(fmt(m[b]["cpu_mb"], ".1f") for b in brokers)
            + " |"
        )


def main() -> None:
    out = Path(sys.argv[1])
    passes = len(list(out.glob("pyk.[0-9]*.txt")))
    table(f"kbench workloads, medians of {passes} passes", medians(out, "{broker}.[0-9]*.txt", kbench))
    if list(out.glob("*.tools.*.txt")):
        table(
            "Apache Kafka's tools (ProducerPerformance 100 B acks=1 8 partitions; ConsumerPerformance "
            "fetch rate; EndToEndLatency 100 B acks=1)",
            medians(out, "{broker}.tools.[0-9]*.txt", tools),
        )


if __name__ == "__main__":
    main()
