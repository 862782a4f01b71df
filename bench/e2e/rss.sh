#!/usr/bin/env bash
# Broker memory with many partitions: RSS of pyk (orchestrator + every shard), or with
# BROKER=kafka of Apache Kafka (bench/e2e/kafka.sh: KRaft, defaults, -Xmx1g), idle with
# PARTITIONS partitions, then while and after GB gigabytes are produced across them.
#
#   bench/e2e/rss.sh [PARTITIONS] [GB] [OUTDIR]     default: 1000 partitions, 10 GB
#
# Prints one "rss_mib phase=<idle|peak|after> total=<MiB> per_process=<...>" line per phase.
# The load is `pyk bench produce --client raw` (1 KiB values, acks=1) spread over all partitions.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
PARTS=${1:-1000}
GB=${2:-10}
OUT=${3:-$HERE/bench/results/rss-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
BROKER=${BROKER:-pyk}
DATA=$(mktemp -d "/tmp/$BROKER-rss.XXXXXX")
if [ "$BROKER" = kafka ]; then
    PORT=${KAFKA_PORT:-29192}
    "$HERE/bench/e2e/kafka.sh" start "$PORT" "$DATA" >/dev/null
    PYK=$(cat "$DATA/kafka.pid")  # the JVM
    trap 'cp "$DATA/kafka.log" "$OUT/kafka.log"; "$HERE/bench/e2e/kafka.sh" stop "$DATA"; rm -rf "$DATA"' EXIT
else
    PORT=${PYK_PORT:-19193}
    for p in $PORT $((PORT + 1)) $((PORT + 2)) $((PORT + 3)); do  # pyk's shards listen on PORT + i
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is taken; set PYK_PORT" >&2; exit 1; fi
    done
    python -m pyk serve --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA" \
        >"$OUT/pyk.log" 2>&1 &
    PYK=$!
    trap 'kill $PYK 2>/dev/null; wait $PYK 2>/dev/null; rm -rf "$DATA"' EXIT
    until grep -q "started: " "$OUT/pyk.log"; do
        kill -0 "$PYK" 2>/dev/null || { echo "pyk did not start; see $OUT/pyk.log" >&2; exit 1; }
        sleep 0.1
    done
fi

rss() {  # total and per-process RSS in MiB of the broker process and its children (pyk: shards)
    local total=0 parts="" kib
    for pid in $PYK $(pgrep -P "$PYK"); do
        kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + kib)); parts="$parts $pid:$((kib / 1024))"
    done
    echo "$((total / 1024)) ${parts# }"
}
report() { read -r total per <<<"$2"; echo "rss_mib phase=$1 total=$total per_process=$per" | tee -a "$OUT/rss.txt"; }

python -m pyk topics --bootstrap "127.0.0.1:$PORT" create rss --partitions "$PARTS" >/dev/null
sleep 5
report idle "$(rss)"

MSGS=$(awk "BEGIN {printf \"%d\", $GB * 1024 * 1024}")  # 1 KiB messages
python -m pyk bench produce -b "127.0.0.1:$PORT" -t rss --no-create --size 1024 --acks 1 \
    --duration 0 --messages "$MSGS" --quiet --json "$OUT/produce.json" >"$OUT/produce.txt" 2>&1 &
LOAD=$!
peak=0; peak_line=""
while kill -0 "$LOAD" 2>/dev/null; do
    line=$(rss); total=${line%% *}
    if [ "$total" -gt "$peak" ]; then peak=$total; peak_line=$line; fi
    sleep 1
done
wait "$LOAD" || { echo "produce failed; see $OUT/produce.txt" >&2; exit 1; }
report peak "$peak_line"
sleep 5
report after "$(rss)"
du -sh "$DATA" | tee -a "$OUT/rss.txt"
echo "results in $OUT"
