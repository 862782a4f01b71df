#!/usr/bin/env bash
# Two (or more) pyk trees side by side: for each pass, start a default `pyk serve` from each tree
# in turn, run the named kbench workloads against it, stop it.  Used for before/after tables
# (docs/performance.md); medians come from the passes.
#
#   bench/e2e/trees.sh PASSES "WORKLOAD ..." TREE [TREE ...]
#   e.g. bench/e2e/trees.sh 3 "produce-100B-1perreq-1p produce-1KiB-acksall-1000p" /tmp/before .
#
# A TREE may carry broker settings after "::", comma-separated, e.g. `.::io.engine=io_uring`
# beside `.::io.engine=epoll` compares the engines of one tree the same way.
#
# Each TREE must have pyk._native built in place.  Env: SHARED (default ../shared/bench relative
# to the repo, as for compare.sh), DUR (seconds per workload, default 8), PORT (default 39092; the
# metrics endpoint of trees that have one listens on PORT + 1000; a broker has 60 s to start).
set -u
PASSES=$1; WL=$2; shift 2
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$HERE/../shared/bench" && pwd)}
eval "$("$SHARED/setup.sh" "${BENCH_KIT:-$HOME/.cache/pyk-bench}" 2>/dev/null)"
port=${PORT:-39092}
# shellcheck source=tree_broker.sh
source "$(dirname "$0")/tree_broker.sh"
for pass in $(seq 1 "$PASSES"); do
  for spec in "$@"; do
    data=$(mktemp -d /tmp/pyk-trees-XXXX)
    if ! start_broker "$spec" "$data" "$port"; then
      echo "### pass $pass tree $spec: the broker did not start (skipped):"; tail -3 "$data/broker.log"
      rm -rf "$data"; continue
    fi
    echo "$srv $(pgrep -P "$srv" | tr '\n' ' ')" > "$data/pids"
    echo "### pass $pass tree $spec load $(cut -d' ' -f1-3 /proc/loadavg)"
    ONLY="$WL" BROKER_PIDFILE="$data/pids" DUR=${DUR:-8} "$SHARED/kbench.sh" "127.0.0.1:$port" 1 2>&1 | grep -v "^#"
    kill "$srv"; wait "$srv" 2>/dev/null
    rm -rf "$data"
  done
done
