#!/usr/bin/env bash
# The README's first command: install what is missing, build pyk, and run a broker in the
# foreground on 127.0.0.1:9092 with its data under ./data (of this checkout).
#
#   ci/run.sh [--override key=value ...]        e.g. ci/run.sh --override num.partitions=3
#   ci/run.sh server.properties [--override ...]  the file's listeners/log.dirs are used as given
#
# Ctrl-C (SIGINT) or SIGTERM stops the broker cleanly.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/install.sh"
. "$HERE/common.sh"
pick_python
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$PY" -m pyk serve "$@"  # a properties file: it decides listeners and log.dirs
fi
mkdir -p "$REPO/data"
exec "$PY" -m pyk serve --override listeners=PLAINTEXT://127.0.0.1:9092 --override "log.dirs=$REPO/data" "$@"
