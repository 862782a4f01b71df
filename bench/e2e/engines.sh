#!/usr/bin/env bash
# The two I/O engines side by side: each workload runs with io.engine=io_uring and =epoll in
# turn (A B A B ...), on a fresh `pyk serve` per run (pyk bench --start-broker), so that the
# load of a shared machine hits both alike.  Prints one line per run, then the medians.
#
#   bench/e2e/engines.sh [PASSES] [OUTDIR]        default: 3 passes, bench/results/engines-<timestamp>
#
# Env: DUR (seconds per produce run, default 5), ONLY (workload names, space-separated).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
PASSES=${1:-3}
OUT=${2:-$HERE/bench/results/engines-$(date +%Y%m%d-%H%M%S)}
DUR=${DUR:-5}
mkdir -p "$OUT"
cd "$HERE"

declare -A WORKLOADS=(
    [consume-100B-8p]="consume -p 8 -s 100 -n 5000000"
    [consume-100KiB-1p]="consume -p 1 -s 102400 -n 20000"
    [produce-100B-acks1-8p]="produce -p 8 -s 100 --acks 1 -d $DUR"
    [produce-1KiB-acksall-1p]="produce -p 1 -s 1024 --acks all -d $DUR"
    [produce-1KiB-flush1-8p]="produce -p 8 -s 1024 --acks all -d $DUR --broker-override log.flush.interval.messages=1"
)
NAMES=${ONLY:-consume-100B-8p consume-100KiB-1p produce-100B-acks1-8p produce-1KiB-acksall-1p produce-1KiB-flush1-8p}

for name in $NAMES; do
    for pass in $(seq "$PASSES"); do
        for engine in io_uring epoll; do
            json="$OUT/$name.$engine.$pass.json"
            # shellcheck disable=SC2086
            python -m pyk bench ${WORKLOADS[$name]} --start-broker --broker-override "io.engine=$engine" \
                --quiet --json "$json" >/dev/null
            python - "$json" "$name" "$engine" "$pass" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["result"]
print(f"{sys.argv[2]:26} {sys.argv[3]:9} pass {sys.argv[4]}: {r['msgs_per_s']:>12,.0f} msgs/s {r['mb_per_s']:8.1f} MB/s"
      f"  p99 {r['latency_ms']['p99'] or 0:7.1f} ms  broker CPU {r['broker_cpu_pct'] or 0:5.0f} %  errors {r['errors']}")
PY
        done
    done
done | tee "$OUT/runs.txt"

python - "$OUT" <<'PY'
import glob, json, os, statistics, sys
rows = {}
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    name, engine, _ = os.path.basename(path).rsplit(".", 3)[:3]
    r = json.load(open(path))["result"]
    rows.setdefault((name, engine), []).append(r)
print("\n| workload | engine | msgs/s (median) | MB/s | p99 ms | broker CPU | msgs/s min-max |")
print("|---|---|---|---|---|---|---|")
for (name, engine), rs in sorted(rows.items()):
    rs.sort(key=lambda r: r["msgs_per_s"])
    m = rs[len(rs) // 2]
    print(f"| {name} | {engine} | {m['msgs_per_s']:,.0f} | {m['mb_per_s']:.1f} | {m['latency_ms']['p99'] or 0:.1f} "
          f"| {m['broker_cpu_pct'] or 0:.0f} % | {rs[0]['msgs_per_s']:,.0f}-{rs[-1]['msgs_per_s']:,.0f} |")
PY
