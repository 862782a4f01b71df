# Sourced by trees.sh and cpu.sh: start_broker SPEC DATA PORT starts a default `pyk serve` from
# the tree SPEC names (a TREE may carry broker settings after "::", comma-separated) with its
# logs in DATA, sets `srv` to its pid and returns once it serves; 1 if it did not start (it is
# then stopped).
start_broker() {
  local spec=$1 data=$2 port=$3 tree=${1%%::*} settings s
  local extra=()
  if [[ $spec == *::* ]]; then
    IFS=, read -ra settings <<< "${spec#*::}"
    for s in "${settings[@]}"; do extra+=(--override "$s"); done
  fi
  (cd "$tree" && exec python3 -m pyk serve --override "listeners=PLAINTEXT://127.0.0.1:$port" \
      --override "log.dirs=$data/logs" --override "metrics.listener=127.0.0.1:$((port + 1000))" \
      "${extra[@]}" > "$data/broker.log" 2>&1) &
  srv=$!
  for _ in $(seq 300); do grep -q "serving" "$data/broker.log" 2>/dev/null && return 0; sleep 0.2; done
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
  return 1
}
