# Sourced by ci/*.sh: the repository root, the Python interpreter pyk runs on, log helpers.
#
# The interpreter: $PYK_PYTHON if set; else ./.venv if ci/install.sh made one; else `python3`
# on PATH, unless that is a distribution Python that refuses pip installs (PEP 668's
# EXTERNALLY-MANAGED, as on Debian 12), in which case ci/install.sh creates ./.venv from it
# and everything runs there.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO/.venv

say() { printf '[pyk ci] %s\n' "$*" >&2; }
die() { printf '[pyk ci] ERROR: %s\n' "$*" >&2; exit 1; }

# True when $1 is an interpreter pip may install into: a virtualenv, or not externally managed.
pip_allowed() {
    "$1" - <<'PY'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if in_venv or not managed else 1)
PY
}

# Sets PY (the interpreter to use) and BASE_PY (the one a venv would be made from).
pick_python() {
    BASE_PY=$(command -v python3 || true)
    if [ -n "${PYK_PYTHON:-}" ]; then
        PY=$PYK_PYTHON
    elif [ -x "$VENV/bin/python" ]; then
        PY=$VENV/bin/python
    elif [ -n "$BASE_PY" ] && pip_allowed "$BASE_PY"; then
        PY=$BASE_PY
    else
        PY=$VENV/bin/python  # created by ci/install.sh
    fi
}

# Where ci/install.sh --test puts the jars of ci/java/pom.xml (tests/kafka.py reads the same place).
java_lib() {
    local version
    version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO/ci/java/pom.xml")
    echo "${PYK_JAVA_LIB:-$HOME/.cache/pyk/java/kafka-$version}"
}

# Where ci/install.sh --test unpacks Debian's kernel package (tests/security/vm.py reads the same place).
kernel_dir() {
    echo "${PYK_KERNEL_DIR:-$HOME/.cache/pyk/kernel}"
}
