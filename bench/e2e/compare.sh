#!/usr/bin/env bash
# Side-by-side run of the standard workloads (../shared/bench/kbench.sh) against pyk (on disk,
# default config), Apache Kafka (bench/e2e/kafka.sh: KRaft, defaults, on disk, -Xmx1g) and the
# peer broker Tansu (memory storage), alternating pyk / Kafka / Tansu within each pass so that the
# load of a shared machine hits all three alike; each broker is started fresh (empty data) for
# its turn and stopped after it. After kbench, Kafka's own ProducerPerformance,
# ConsumerPerformance and EndToEndLatency (bench/e2e/kafkatools.sh) run against pyk and Kafka.
#
#   bench/e2e/compare.sh [PASSES] [OUTDIR]        default: 3 passes, bench/results/<timestamp>
#
# Prints the medians table (bench/e2e/compare_table.py) at the end; per-pass outputs stay in
# OUTDIR (<broker>.<pass>.txt, <broker>.tools.<pass>.txt, logs).
# Env: SHARED (default ../shared/bench relative to the repo), DUR (seconds per workload),
#      ONLY (workload names), BROKERS (default "pyk kafka tansu"), TOOLS=0 skips Kafka's tools,
#      PYK_OVERRIDES (extra "--override k=v" for pyk), KAFKA_OVERRIDES / KAFKA_HEAP (kafka.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$(cd "$HERE/../shared/bench" && pwd)}
PASSES=${1:-3}
OUT=${2:-$HERE/bench/results/$(date +%Y%m%d-%H%M%S)}
BROKERS=${BROKERS:-pyk kafka tansu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
eval "$("$SHARED/setup.sh")"
export KLOAD LD_LIBRARY_PATH

TANSU_PORT=19092 PYK_PORT=${PYK_PORT:-19093} KAFKA_PORT=${KAFKA_PORT:-29092}
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pyk's shards listen on PORT + i; Kafka's controller on PORT + 1
for p in $TANSU_PORT $PYK_PORT $((PYK_PORT + 1)) $((PYK_PORT + 2)) $((PYK_PORT + 3)) $KAFKA_PORT $((KAFKA_PORT + 1)); do
    if taken "$p"; then echo "port $p is taken (a broker left running?); set PYK_PORT / KAFKA_PORT" >&2; exit 1; fi
done

DATA=""
STOP=""
cleanup() { [ -z "$STOP" ] || eval "$STOP"; [ -z "$DATA" ] || rm -rf "$DATA"; }
trap cleanup EXIT

# start NAME PASS: starts the broker, sets BOOT, writes every broker pid to $OUT/NAME.pids, sets STOP
start() {
    local name=$1 pass=$2 pid
    DATA=$(mktemp -d "/tmp/pyk-compare-$name.XXXXXX")
    case $name in
    pyk)
        # shellcheck disable=SC2086
        python -m pyk serve --override "listeners=PLAINTEXT://127.0.0.1:$PYK_PORT" --override "log.dirs=$DATA" \
            ${PYK_OVERRIDES:-} >"$OUT/pyk.$pass.log" 2>&1 &
        pid=$!
        until grep -q "started: " "$OUT/pyk.$pass.log"; do
            kill -0 "$pid" 2>/dev/null || { echo "pyk did not start; see $OUT/pyk.$pass.log" >&2; exit 1; }
            sleep 0.1
        done
        BOOT=127.0.0.1:$PYK_PORT; STOP="kill $pid; wait $pid 2>/dev/null || true" ;;
    kafka)
        BOOT=$("$HERE/bench/e2e/kafka.sh" start "$KAFKA_PORT" "$DATA")
        pid=$(cat "$DATA/kafka.pid")
        STOP="cp '$DATA/kafka.log' '$OUT/kafka.$pass.log'; '$HERE/bench/e2e/kafka.sh' stop '$DATA'" ;;
    tansu)
        pid=$("$SHARED/peer.sh" "$TANSU_PORT")
        BOOT=127.0.0.1:$TANSU_PORT; STOP="kill $pid; wait $pid 2>/dev/null || true" ;;
    *) echo "unknown broker $name" >&2; exit 2 ;;
    esac
    # Broker CPU counts the process and its children (pyk: the orchestrator and every shard).
    { echo "$pid"; pgrep -P "$pid" || true; } >"$OUT/$name.pids"
}
stop() { eval "$STOP"; STOP=""; rm -rf "$DATA"; DATA=""; }

for pass in $(seq "$PASSES"); do
    for name in $BROKERS; do
        start "$name" "$pass"
        echo "# pass $pass $name $BOOT load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
        BROKER_PIDFILE=$OUT/$name.pids KBENCH_OUT=$OUT/$name.raw "$SHARED/kbench.sh" "$BOOT" 1 \
            | tee "$OUT/$name.$pass.txt"
        if [ "${TOOLS:-1}" != 0 ] && [ "$name" != tansu ]; then
            "$HERE/bench/e2e/kafkatools.sh" "$BOOT" "$OUT/$name.pids" 2>>"$OUT/$name.tools.log" \
                | tee "$OUT/$name.tools.$pass.txt"
        fi
        [ "$name" != pyk ] || kill -0 "$(head -1 "$OUT/pyk.pids")" \
            || { echo "pyk died during the run; see $OUT/pyk.$pass.log" >&2; exit 1; }
        stop
    done
done
python3 "$HERE/bench/e2e/compare_table.py" "$OUT" | tee "$OUT/table.md"
echo "results in $OUT"
