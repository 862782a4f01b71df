#!/usr/bin/env bash
# Broker CPU per message, trees side by side: for each pass and each TREE (as in trees.sh, with
# optional broker settings after "::", comma-separated), start a default `pyk serve`, run one kload workload against
# it, and report the utime+stime of the broker's processes (orchestrator and shards, from /proc)
# over the run divided by the messages it acknowledged, and its user and system (kernel) parts.
# kbench's brkCPU column is the same measure rounded to whole % of a core; on a loaded machine
# this is the steadier number.
#
#   bench/e2e/cpu.sh PASSES WORKLOAD TREE [TREE ...]
#   WORKLOAD: 1perreq (produce-100B-1perreq-1p) | acks1-8p (produce-100B-acks1-8p)
#             | acks1-1p (produce-100B-acks1-1p)
#
# Env: SHARED, BENCH_KIT (as trees.sh), DUR (seconds, default 8), PORT (default 39092).
set -u
PASSES=$1; WL=$2; shift 2
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$HERE/../shared/bench" && pwd)}
eval "$("$SHARED/setup.sh" "${BENCH_KIT:-$HOME/.cache/pyk-bench}" 2>/dev/null)"
port=${PORT:-39092}
DUR=${DUR:-8}
case $WL in
  1perreq) parts=1; args=(-X acks=1 -X linger.ms=0 -X batch.num.messages=1) ;;
  acks1-8p) parts=8; args=(-X acks=1) ;;
  acks1-1p) parts=1; args=(-X acks=1) ;;
  *) echo "unknown workload $WL" >&2; exit 2 ;;
esac
# ticks FIELD PID...: the processes' utime (FIELD 14) or stime (15), in clock ticks, summed
ticks() { local f=$1; shift; for p in "$@"; do awk -v f="$f" '{print $f}' "/proc/$p/stat" 2>/dev/null; done | paste -sd+ | bc; }
# shellcheck source=tree_broker.sh
source "$(dirname "$0")/tree_broker.sh"
for pass in $(seq 1 "$PASSES"); do
  for spec in "$@"; do
    data=$(mktemp -d /tmp/pyk-cpu-XXXX)
    if ! start_broker "$spec" "$data" "$port"; then
      echo "pass $pass $spec: the broker did not start: $(grep -m1 ERROR "$data/broker.log")"
      rm -rf "$data"; continue
    fi
    pids="$srv $(pgrep -P "$srv" | tr '\n' ' ')"
    "$KLOAD" -b "127.0.0.1:$port" -m create -t cpu -p "$parts" >/dev/null 2>&1
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    u0=$(ticks 14 $pids); s0=$(ticks 15 $pids)
    line=$("$KLOAD" -b "127.0.0.1:$port" -m produce -t cpu -p "$parts" -s 100 -n 2000000000 -d "$DUR" \
        "${args[@]}" 2>/dev/null | grep '^kload ' | tail -1)
    # shellcheck disable=SC2086
    u1=$(ticks 14 $pids); s1=$(ticks 15 $pids)
    ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$line"); rate=$(sed -n 's/.* msgs_s=\([0-9]*\).*/\1/p' <<<"$line")
    hz=$(getconf CLK_TCK)
    awk -v s="$spec" -v p="$pass" -v u="$((u1 - u0))" -v k="$((s1 - s0))" -v hz="$hz" -v ok="${ok:-0}" \
        -v r="${rate:-0}" -v l="$load" \
        'BEGIN{c = u + k; m = ok ? 1e6 / hz / ok : 0
               printf "pass %d %-40s %9d msgs/s  broker CPU %6.2f s  %7.3f us/msg (user %.3f, system %.3f)  load %s\n",
               p, s, r, c / hz, c * m, u * m, k * m, l}'
    kill "$srv"; wait "$srv" 2>/dev/null
    rm -rf "$data"
  done
done
