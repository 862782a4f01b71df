#!/usr/bin/env bash
# Apache Kafka (KRaft, one combined broker+controller, on disk, -Xmx1g) for pyk-vs-Kafka
# benchmarks, from the jars `ci/install.sh --test` fetched (ci/common.sh java_lib).
#
#   bench/e2e/kafka.sh start PORT DATADIR     formats DATADIR on first use, starts Kafka in the
#                                             background, waits until it serves, prints the bootstrap
#   bench/e2e/kafka.sh stop DATADIR           SIGTERM (then SIGKILL after 60 s), waits for the exit
#
# The controller listens on PORT+1. Kafka's own defaults apply, except what a single node needs
# (internal topics with one replica, as Kafka's config/server.properties has them). Env:
# KAFKA_OVERRIDES: extra server.properties lines ("k=v k=v"); KAFKA_HEAP (default -Xmx1g).
# The broker's output goes to DATADIR/kafka.log, its pid to DATADIR/kafka.pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../ci/common.sh
. "$HERE/ci/common.sh"
LIB=$(java_lib)
[ -f "$LIB/.pom.sha256" ] || die "Kafka's jars are not in $LIB: run ci/install.sh --test"
pick_python
JAVA=(java "-Dlog4j2.configurationFile=$HERE/ci/java/log4j2.properties" -cp "$LIB/*")
# Ready = answers ApiVersions, as tests/kafka.py's ApacheKafka waits for it.
ready() { (cd "$HERE" && "$PY" -c "import sys; from tests.helpers import api_versions_probe as p; p('127.0.0.1', $1)") 2>/dev/null; }

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

serving() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
    local port=$1 dir=$2 controller=$(($1 + 1))
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    for p in "$port" "$controller"; do serving "$p" && die "port $p is taken"; done
    local props=$dir/server.properties
    {
        echo "process.roles=broker,controller"
        echo "node.id=1"
        echo "controller.quorum.voters=1@127.0.0.1:$controller"
        echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        echo "controller.listener.names=CONTROLLER"
        echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        echo "log.dirs=$dir/data"
        echo "offsets.topic.replication.factor=1"
        echo "transaction.state.log.replication.factor=1"
        echo "transaction.state.log.min.isr=1"
        echo "share.coordinator.state.topic.replication.factor=1"
        echo "share.coordinator.state.topic.min.isr=1"
        for kv in ${KAFKA_OVERRIDES:-}; do echo "$kv"; done
    } >"$props"
    if [ ! -f "$dir/data/meta.properties" ]; then
        local cluster_id
        cluster_id=$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)
        "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" >>"$dir/kafka.log" 2>&1 \
            || die "formatting $dir failed; see $dir/kafka.log"
    fi
    (cd "$dir" && exec setsid "${JAVA[0]}" "${KAFKA_HEAP:--Xmx1g}" -XX:+UseG1GC "${JAVA[@]:1}" kafka.Kafka "$props" \
        >>"$dir/kafka.log" 2>&1 </dev/null) &
    echo $! >"$dir/kafka.pid"
    local deadline=$((SECONDS + 90))
    until ready "$port"; do
        kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || die "Kafka exited during start-up; see $dir/kafka.log"
        [ $SECONDS -lt $deadline ] || die "Kafka not serving after 90 s; see $dir/kafka.log"
        sleep 0.2
    done
    echo "127.0.0.1:$port"
}

stop() {
    local pidfile=$1/kafka.pid pid
    [ -f "$pidfile" ] || die "no $pidfile"
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { say "Kafka ignored SIGTERM for 60 s; killing"; kill -KILL "$pid"; }
    fi
    rm -f "$pidfile"
}

case "${1:-}" in
    start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
