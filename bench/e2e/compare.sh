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

if (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null; then echo "port 19092 is taken (a peer left running?)" >&2; exit 1; fi
PEER=$("$SHARED/peer.sh" 19092)
BROKER_PID=$PEER "$SHARED/kbench.sh" 127.0.0.1:19092 "$PASSES" | tee "$OUT/peer.txt"
kill "$PEER"; wait "$PEER" 2>/dev/null || true

DATA=$(mktemp -d /tmp/pyk-bench.XXXXXX)
PORT=${PYK_PORT:-19093}
for p in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)); do  # pyk's shards listen on PORT + i
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is taken; set PYK_PORT" >&2; exit 1; fi
done
# shellcheck disable=SC2086
python -m pyk serve --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA" \
    ${PYK_OVERRIDES:-} >"$OUT/pyk.log" 2>&1 &
PYK=$!
trap 'kill $PYK 2>/dev/null; rm -rf "$DATA"' EXIT
until grep -q "started: " "$OUT/pyk.log"; do
    kill -0 "$PYK" 2>/dev/null || { echo "pyk did not start; see $OUT/pyk.log" >&2; exit 1; }
    sleep 0.1
done
# Broker CPU counts the orchestrator and every shard process.
{ echo "$PYK"; pgrep -P "$PYK"; } >"$OUT/pyk.pids"
BROKER_PIDFILE=$OUT/pyk.pids "$SHARED/kbench.sh" "127.0.0.1:$PORT" "$PASSES" | tee "$OUT/pyk.txt"
kill -0 "$PYK" || { echo "pyk died during the run; see $OUT/pyk.log" >&2; exit 1; }
echo "results in $OUT"
