#!/usr/bin/env bash
# Produce latency across frequent segment rolls, two pyk trees side by side, runs alternating:
# `pyk bench produce` (raw client) of 1 KiB acks=all to 1 partition at a fixed rate the broker
# keeps up with, against a fresh 1-shard `pyk serve` with a small log.segment.bytes, so a run
# crosses many rolls and the latency tail shows the broker's stalls rather than a client queue.
#
#   bench/e2e/roll_latency.sh BEFORE_TREE AFTER_TREE [PASSES]
#
# Env: SEGMENT (log.segment.bytes, default 16 MiB), RATE (msgs/s, default 100000), DUR (s,
# default 10).  Prints one result line per run (the bench's totals row).
set -euo pipefail
BEFORE=$1 AFTER=$2 PASSES=${3:-3}
SEGMENT=${SEGMENT:-16777216} RATE=${RATE:-100000} DUR=${DUR:-10}
run() {  # tree label pass
    local out
    out=$(cd "$1" && python3 -m pyk bench produce --start-broker --broker-override num.shards=1 \
        --broker-override "log.segment.bytes=$SEGMENT" -s 1024 --acks all --rate "$RATE" -d "$DUR" \
        --client raw -q 2>&1 | grep '^produce raw')
    echo "pass=$3 tree=$2 $out"
}
for pass in $(seq 1 "$PASSES"); do
    run "$BEFORE" before "$pass"
    run "$AFTER" after "$pass"
done
