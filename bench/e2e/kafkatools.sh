#!/usr/bin/env bash
# Apache Kafka's own performance tools (org.apache.kafka.tools.*, from the kafka-tools jar that
# `ci/install.sh --test` fetched) against one broker: ProducerPerformance, then
# ConsumerPerformance reading what it wrote, then EndToEndLatency.
#
#   bench/e2e/kafkatools.sh BOOTSTRAP [PIDFILE]
#
# Prints one "tool=NAME msgs_s=.. MB_s=.. p50_ms=.. p99_ms=.. brkCPU=.." line per tool
# ("-" where a tool does not report the value); brkCPU is % of one core summed over the pids in
# PIDFILE, from /proc over the tool's run (JVM start included, about 1 s). The tool's own output
# goes to stderr. Env: RECORDS (ProducerPerformance/ConsumerPerformance records, 100 B each,
# default 2,000,000), E2E_RECORDS (EndToEndLatency round trips, default 5,000).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../ci/common.sh
. "$HERE/ci/common.sh"
BOOT=${1:?usage: kafkatools.sh BOOTSTRAP [PIDFILE]}
PIDFILE=${2:-}
RECORDS=${RECORDS:-2000000}
E2E_RECORDS=${E2E_RECORDS:-5000}
LIB=$(java_lib)
JAVA=(java -Xmx512m "-Dlog4j2.configurationFile=$HERE/ci/java/log4j2.properties" -cp "$LIB/*")
TICK=$(getconf CLK_TCK)
T=kt$(date +%s)

ticks() {  # utime + stime of the broker's pids and their children, in clock ticks
    local sum=0 p
    [ -n "$PIDFILE" ] || { echo 0; return; }
    for p in $(cat "$PIDFILE"); do
        [ -r "/proc/$p/stat" ] && sum=$((sum + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$sum"
}
# run NAME CMD...: runs one tool with the broker's CPU measured around it; its output in $LOG
run() {
    local name=$1 c0 t0; shift
    LOG=$(mktemp /tmp/kafkatools.XXXXXX)
    c0=$(ticks); t0=$(date +%s.%N)
    "${JAVA[@]}" "$@" >"$LOG" 2>&1 || { cat "$LOG" >&2; echo "tool=$name FAILED"; return 1; }
    BCPU=$(awk -v a="$c0" -v b="$(ticks)" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$TICK" \
        'BEGIN{printf "%.0f", (b-a)/hz/(t1-t0)*100}')
    sed "s/^/  $name| /" "$LOG" | tail -5 >&2
}

java "${JAVA[@]:1:2}" -cp "$LIB/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOT" --create \
    --topic "$T-p8" --partitions 8 --replication-factor 1 >/dev/null
java "${JAVA[@]:1:2}" -cp "$LIB/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOT" --create \
    --topic "$T-e2e" --partitions 1 --replication-factor 1 >/dev/null

# "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, a ms 50th, b ms 95th, c ms 99th, ..."
run producer-perf org.apache.kafka.tools.ProducerPerformance --topic "$T-p8" --num-records "$RECORDS" \
    --record-size 100 --throughput -1 --producer-props "bootstrap.servers=$BOOT" acks=1
tail -1 "$LOG" | sed -E "s/.*, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\).*, ([0-9.]+) ms 50th.*, ([0-9.]+) ms 99th,.*/\
tool=producer-perf msgs_s=\1 MB_s=\2 p50_ms=\3 p99_ms=\4 brkCPU=$BCPU/"

# header line, then (the fetch.* columns leave out the group join) "start, end, MB, MB/sec, nMsg, nMsg/sec, rebalance ms, fetch ms, fetch MB/sec, fetch nMsg/sec"
run consumer-perf org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$BOOT" --topic "$T-p8" \
    --messages "$RECORDS" --timeout 60000
tail -1 "$LOG" | awk -v c="$BCPU" -F', *' '{print "tool=consumer-perf msgs_s=" $10 " MB_s=" $9 \
    " p50_ms=- p99_ms=- brkCPU=" c}'

# "Avg latency: A ms" then "Percentiles: 50th = a, 99th = b, 99.9th = c"
run end-to-end-latency org.apache.kafka.tools.EndToEndLatency "$BOOT" "$T-e2e" "$E2E_RECORDS" 1 100
grep Percentiles "$LOG" | awk -v c="$BCPU" -F'[=,]' '{gsub(/ /, ""); print "tool=end-to-end-latency msgs_s=- MB_s=- p50_ms=" $2 \
    " p99_ms=" $4 " brkCPU=" c}'
rm -f "$LOG"
