#!/usr/bin/env bash
# The README's test command: install what the tests need, then run the whole suite.
#
#   ci/test.sh [pytest args]      e.g. ci/test.sh tests/clients -x;  ci/test.sh -m soak (long runs)
#
# Soak tests (@pytest.mark.soak, > 60 s each) are left out unless asked for with -m.  The exit
# code is pytest's: 0 only when tests ran and passed (5, "no tests collected", is a failure).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/install.sh" --test
. "$HERE/common.sh"
pick_python
cd "$REPO"
# Test files run on PYK_TEST_WORKERS parallel workers (pytest-xdist; default 3): most tests wait
# on brokers, JVMs and ZooKeeper rather than compute, so 2 cores carry 3 workers (serially the
# suite takes about an hour).  A file's tests stay on one worker (its module-scoped broker is
# started once).  PYK_TEST_WORKERS=0 runs serially.  Without test paths or -k, tests/cluster then
# runs on its own: its hosts hold ZooKeeper sessions of 3 s, which a loaded machine lets expire.
WORKERS=(-n "${PYK_TEST_WORKERS:-3}" --dist loadfile)
selects=0
for arg in "$@"; do
    case "$arg" in -k|-m|tests*|*.py*) selects=1 ;; esac
done
if [ "$selects" = 1 ]; then
    exec "$PY" -m pytest -m "not soak" "${WORKERS[@]}" "$@"
fi
rc=0
cluster_rc=0
# --durations: the slowest tests of each part are named at the end, for keeping the suite short.
"$PY" -m pytest -m "not soak" "${WORKERS[@]}" --durations=15 --ignore=tests/cluster "$@" || rc=$?
"$PY" -m pytest -m "not soak" --durations=15 tests/cluster "$@" || cluster_rc=$?
[ "$rc" != 0 ] || rc=$cluster_rc
exit "$rc"
