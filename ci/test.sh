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
exec "$PY" -m pytest -m "not soak" "$@"
