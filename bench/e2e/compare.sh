#!/usr/bin/env bash
# Side-by-side run of the standard workloads (../shared/bench/kbench.sh) against the peer
# broker (Tansu, memory storage) and against pyk (on disk, default config), in one run.
#
#   bench/e2e/compare.sh [PASSES] [OUTDIR]        default: 3 passes, bench/results/<timestamp>
#
# Env: SHARED (default ../shared/bench relative to the repo), DUR (seconds per workload),
#      ONLY (workload names), PYK_OVERRIDES (extra "--override k=v" for pyk).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$HERE/../shared/bench" && pwd)}
PASSES=${1:-3}
OUT=${2:-$HERE/bench/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
eval "$("$SHARED/setup.sh")"
export KLOAD LD_LIBRARY_PATH

PEER=$("$SHARED/peer.sh" 19092)
BROKER_PID=$PEER "$SHARED/kbench.sh" 127.0.0.1:19092 "$PASSES" | tee "$OUT/peer.txt"
kill "$PEER"; wait "$PEER" 2>/dev/null || true

DATA=$(mktemp -d /tmp/pyk-bench.XXXXXX)
# shellcheck disable=SC2086
python -m pyk serve --override listeners=PLAINTEXT://127.0.0.1:19093 --override "log.dirs=$DATA" \
    ${PYK_OVERRIDES:-} >"$OUT/pyk.log" 2>&1 &
PYK=$!
trap 'kill $PYK 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/19093) 2>/dev/null && break; sleep 0.1; done
# Broker CPU counts the orchestrator and every shard process.
{ echo "$PYK"; pgrep -P "$PYK"; } >"$OUT/pyk.pids"
BROKER_PIDFILE=$OUT/pyk.pids "$SHARED/kbench.sh" 127.0.0.1:19093 "$PASSES" | tee "$OUT/pyk.txt"
echo "results in $OUT"
