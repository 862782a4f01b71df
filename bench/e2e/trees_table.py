"""Medians table of a bench/e2e/trees.sh run: each tree's msgs/s and broker CPU per message.

    python3 bench/e2e/trees_table.py LOG

LOG is trees.sh's output.  Prints markdown: per workload each tree's median msgs/s (the passes in
brackets, thousands), the last tree's ratio to the first, and each tree's median broker CPU per
message (microseconds: brkCPU % over msgs/s), with the same ratio: CPU time is the steadier
figure on a shared machine.
"""

import math
import re
import statistics
import sys

Pass = tuple[int, float]  # msgs/s, broker CPU us per message


def read(path: str) -> dict[tuple[str, str], list[Pass]]:
    runs: dict[tuple[str, str], list[Pass]] = {}
    tree = ""
    with open(path) as log:
        for line in log:
            heading = re.match(r"### pass \d+ tree (\S+)", line)
            if heading:
                tree = heading.group(1)
                continue
            fields = line.split()
            if len(fields) == 7 and fields[1].isdigit() and int(fields[1]) > 0:
                msgs, cpu = int(fields[1]), fields[5]
                runs.setdefault((tree, fields[0]), []).append((msgs, float(cpu) * 1e4 / msgs if cpu != "-" else math.nan))
    return runs


def main() -> None:
    runs = read(sys.argv[1])
    trees = list(dict.fromkeys(t for t, _ in runs))
    workloads = list(dict.fromkeys(w for _, w in runs))
    print("| workload | " + " | ".join(f"{t} msgs/s" for t in trees) + " | last / first | "
          + " | ".join(f"{t} CPU us/msg" for t in trees) + " | last / first |")
    print("|---" * (2 * len(trees) + 3) + "|")
    for w in workloads:
        rates, cpus, passes = [], [], []
        for t in trees:
            got = runs.get((t, w), [])
            rates.append(statistics.median(r for r, _ in got) if got else math.nan)
            cpus.append(statistics.median(c for _, c in got) if got else math.nan)
            passes.append(", ".join(f"{r / 1000:.0f}" for r, _ in got))
        print(f"| {w} | " + " | ".join(f"{r / 1000:.0f} k ({p})" for r, p in zip(rates, passes, strict=True))
              + f" | {rates[-1] / rates[0]:.2f}x | " + " | ".join(f"{c:.3f}" for c in cpus)
              + f" | {cpus[-1] / cpus[0]:.2f}x |")


if __name__ == "__main__":
    main()
