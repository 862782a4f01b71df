#!/usr/bin/env bash
# Installs what pyk needs on Debian 12 (Python 3.11) and builds it in place; idempotent.
#
#   ci/install.sh          system packages, then `pip install -e .[plot]` (builds pyk._native;
#                          the plot extra lets `pyk bench --plot` draw)
#   ci/install.sh --test   the same plus the test and bench extras (`pip install -e .[plot,test,bench]`)
#                          and the Java jars of ci/java/pom.xml (Kafka's client, tools, Streams,
#                          Connect and broker) in $PYK_JAVA_LIB
#
# Run as root (apt-get).  Re-runs are fast: apt is skipped when every package is present, and
# pip is skipped when nothing that goes into the build (setup.py, pyproject.toml, ext/) changed
# since the last successful install and pyk._native still imports.  A failed build, or a
# pyk._native that does not import or is older than its sources, fails this script loudly:
# there is no pure-Python fallback to land on silently.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

EXTRAS="[plot]"
TEST=""
case "${1:-}" in
    "") ;;
    --test) EXTRAS="[plot,test,bench]"; TEST=1 ;;  # tests, and bench/micro's pytest-benchmark
    *) die "usage: ci/install.sh [--test]" ;;
esac

# System packages --------------------------------------------------------------------------------
# Build: compiler, Python headers, the codec, xxhash (log cleaner) and io_uring libraries
# pyk._native links.
# Tools: kcat for the README's quick start and the client tests; librdkafka-dev for the
# load generator of the benchmarks.
PACKAGES=(build-essential pkg-config liburing-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev libxxhash-dev kcat librdkafka-dev)
# Test only: Burrow (reads __consumer_offsets, tests/groups/test_burrow.py) and the ZooKeeper it and
# tests/cluster need; iproute2 makes the network namespaces of the partition tests (tests/cluster/netns.py).
# Java 17 and Maven fetch and run Kafka's jars (tests/kafka.py).
# Chromium is the browser of the web console's tests (tests/console, driven by Playwright).
[ -n "$TEST" ] && PACKAGES+=(zookeeper iproute2 burrow openjdk-17-jdk-headless maven chromium)
# Test only: the MIT Kerberos KDC tests/security/test_gssapi.py starts, kinit, and the headers
# python-gssapi builds against where no wheel fits.
[ -n "$TEST" ] && PACKAGES+=(krb5-kdc krb5-admin-server krb5-user libkrb5-dev)
# Test only: QEMU, and the busybox and depmod virtme-ng's initramfs uses, boot Debian's kernel
# (fetched below) for the kernel TLS test (tests/security/test_kernel_tls.py): the kernel of
# the machine the tests run on may have no TLS module.
[ -n "$TEST" ] && PACKAGES+=(qemu-system-x86 busybox-static kmod)

pick_python
if [ -z "$BASE_PY" ] && [ -z "${PYK_PYTHON:-}" ]; then
    PACKAGES+=(python3 python3-dev python3-venv)
elif [ -z "${PYK_PYTHON:-}" ] && [ "$PY" = "$VENV/bin/python" ] && [ ! -x "$PY" ]; then
    PACKAGES+=(python3-venv)  # Debian's ensurepip for the venv
fi
# Python.h of the interpreter that will compile the extension (Debian: python3-dev).
HEADERS_PY=${PYK_PYTHON:-${BASE_PY:-}}
if [ -n "$HEADERS_PY" ] && ! "$HEADERS_PY" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    case "$("$HEADERS_PY" -c 'import sys; print(sys.base_prefix)')" in
        /usr) PACKAGES+=(python3-dev) ;;
        *) die "$HEADERS_PY has no Python.h and is not Debian's python3: install its development headers" ;;
    esac
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} first"
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python environment -----------------------------------------------------------------------------
pick_python
if [ "$PY" = "$VENV/bin/python" ] && [ ! -x "$PY" ]; then
    BASE_PY=$(command -v python3) || die "python3 not found after installing it"
    say "creating $VENV (the system Python is externally managed, PEP 668)"
    "$BASE_PY" -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi
if [ -d "$VENV" ] && [ ! -f "$VENV/.gitignore" ]; then
    printf '*\n' >"$VENV/.gitignore"  # keep the venv out of git without touching .gitignore
fi
"$PY" - <<'PY' || die "pyk needs Python >= 3.11 (found $("$PY" --version 2>&1) at $PY)"
import sys
sys.exit(sys.version_info < (3, 11))
PY

# Build and install pyk (editable) ---------------------------------------------------------------
cd "$REPO"
mkdir -p build
# The native sources, as tests/conftest.py's guard lists them (generated ext/*.c excluded).
NATIVE_SOURCES=(ext/*.pyx ext/*.pxd ext/*.pxi ext/include/*.h ext/c/*.c ext/c/*.h ext/pyk/*.pxd)
digest=$( { echo "$PY"; sha256sum setup.py pyproject.toml; for f in "${NATIVE_SOURCES[@]}"; do
          if [ -f "$f" ]; then sha256sum "$f"; fi; done; } | sha256sum | cut -d' ' -f1)

native_ok() {
    # pyk._native imports from this checkout (through the editable install: run from /, not from
    # the checkout), is compiled, and is not older than any ext/ source.
    (cd / && "$PY" - "$REPO") <<'PY'
import importlib.machinery, pathlib, sys
repo = pathlib.Path(sys.argv[1]).resolve()
try:
    import pyk, pyk._native as native
except ImportError as exc:
    print(f"pyk._native does not import: {exc}", file=sys.stderr); sys.exit(1)
so = pathlib.Path(native.__file__).resolve()
if pathlib.Path(pyk.__file__).resolve().parent.parent != repo:
    print(f"pyk imports from {pyk.__file__}, not from {repo}", file=sys.stderr); sys.exit(1)
if not so.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
    print(f"pyk._native is {so}, not a compiled extension", file=sys.stderr); sys.exit(1)
patterns = ("*.pyx", "*.pxd", "*.pxi", "include/*.h", "c/*.c", "c/*.h", "pyk/*.pxd")
sources = [p for pattern in patterns for p in (repo / "ext").glob(pattern)]
stale = [str(p.relative_to(repo)) for p in sources if p.stat().st_mtime > so.stat().st_mtime]
if stale:
    print(f"pyk._native ({so.name}) is older than {', '.join(sorted(stale))}", file=sys.stderr); sys.exit(1)
PY
}

PLAIN_STAMP=build/.pyk-install.stamp
TEST_STAMP=build/.pyk-install-test.stamp
stamp_is() { [ -f "$1" ] && [ "$(cat "$1")" = "$digest" ]; }

if { stamp_is "$PLAIN_STAMP" || stamp_is "$TEST_STAMP"; } && native_ok 2>/dev/null; then
    if [ -n "$TEST" ] && ! stamp_is "$TEST_STAMP"; then
        say "pip install -e .$EXTRAS (pyk._native is up to date)"
        "$PY" -m pip install -q -e ".$EXTRAS" || die "pip install -e .$EXTRAS failed (see above)"
        echo "$digest" >"$TEST_STAMP"
    else
        say "pyk is built and installed (nothing changed since the last install)"
    fi
else
    # Remove the in-place extension so the build cannot keep a stale one (build_ext skips
    # targets it believes up to date, and it does not know about headers).
    rm -f pyk/_native.*.so "$PLAIN_STAMP" "$TEST_STAMP"
    say "pip install -e .$EXTRAS (builds pyk._native)"
    "$PY" -m pip install -q -e ".$EXTRAS" || die "pip install -e .$EXTRAS failed (see above)"
    native_ok || die "pyk._native is not usable after the build (see above)"
    echo "$digest" >"$PLAIN_STAMP"
    if [ -n "$TEST" ]; then echo "$digest" >"$TEST_STAMP"; fi
fi
"$PY" -c 'import pyk._native as n; print("[pyk ci] pyk._native:", n.__file__)' >&2

# Java jars for the tests (Kafka's client, tools, Streams, Connect, broker) -----------------------
if [ -n "$TEST" ]; then
    JAVA_LIB=$(java_lib)
    pom_digest=$(sha256sum ci/java/pom.xml | cut -d' ' -f1)
    if [ -f "$JAVA_LIB/.pom.sha256" ] && [ "$(cat "$JAVA_LIB/.pom.sha256")" = "$pom_digest" ]; then
        say "Java jars are in $JAVA_LIB (nothing changed since the last fetch)"
    else
        say "fetching the Java jars of ci/java/pom.xml into $JAVA_LIB (Maven Central)"
        rm -rf "$JAVA_LIB"
        mvn -q -B -f ci/java/pom.xml dependency:copy-dependencies -DoutputDirectory="$JAVA_LIB" \
            || die "Maven could not fetch the jars of ci/java/pom.xml (see above): the Java tests need them"
        echo "$pom_digest" >"$JAVA_LIB/.pom.sha256"
    fi
fi

# Debian's kernel for the kernel TLS test ---------------------------------------------------------
# The package of the newest linux-image-amd64, unpacked (not installed: the machine keeps its own
# kernel) where tests/security/vm.py boots it from.
if [ -n "$TEST" ]; then
    KERNEL_DIR=$(kernel_dir)
    package=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
    [ -n "$package" ] || die "apt knows no linux-image-amd64 (run apt-get update): the kernel TLS test needs it"
    if [ -f "$KERNEL_DIR/.package" ] && [ "$(cat "$KERNEL_DIR/.package")" = "$package" ]; then
        say "Debian's kernel $package is in $KERNEL_DIR"
    else
        say "fetching Debian's kernel $package into $KERNEL_DIR (for the kernel TLS test)"
        rm -rf "$KERNEL_DIR" && mkdir -p "$KERNEL_DIR"
        (cd "$KERNEL_DIR" && apt-get download -q "$package" >/dev/null && dpkg-deb -x ./*.deb . && rm ./*.deb) \
            || die "could not fetch and unpack $package (see above)"
        echo "$package" >"$KERNEL_DIR/.package"
    fi
fi
