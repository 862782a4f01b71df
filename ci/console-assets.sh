#!/usr/bin/env bash
# Refreshes the web console's vendored browser libraries (pyk/console/static/vendor) from the npm
# registry, at the versions locked in ci/console/package-lock.json.
#
#   ci/console-assets.sh          npm ci in a scratch directory, then copy the built files
#   ci/console-assets.sh --check  fail if the committed files differ from the locked versions
#
# The built files are committed (see pyk/console/__init__.py for why), so neither installing nor
# testing pyk runs this: it is for whoever bumps a version in ci/console/package.json (then
# `npm install --package-lock-only` there, run this, commit the lock and the files together).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

command -v npm >/dev/null || die "npm is needed to fetch the console's assets (Debian: apt-get install npm)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$REPO/ci/console/package.json" "$REPO/ci/console/package-lock.json" "$WORK/"
(cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund --silent) || die "npm ci failed (see above)"

OUT=$WORK/vendor
mkdir -p "$OUT"
# source inside node_modules -> name under static/vendor
cp "$WORK/node_modules/htmx.org/dist/htmx.min.js" "$OUT/htmx.min.js"
cp "$WORK/node_modules/uplot/dist/uPlot.iife.min.js" "$OUT/uPlot.iife.min.js"
cp "$WORK/node_modules/uplot/dist/uPlot.min.css" "$OUT/uPlot.min.css"
for pkg in htmx.org uplot; do
    printf '%s %s\n' "$pkg" "$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$WORK/node_modules/$pkg/package.json")"
done >"$OUT/VERSIONS"

DEST=$REPO/pyk/console/static/vendor
if [ "${1:-}" = "--check" ]; then
    diff -r "$OUT" "$DEST" || die "pyk/console/static/vendor differs from ci/console/package-lock.json: run ci/console-assets.sh"
    say "vendored console assets match the lockfile"
else
    mkdir -p "$DEST"
    rm -f "$DEST"/*
    cp "$OUT"/* "$DEST/"
    say "copied $(ls "$OUT" | tr '\n' ' ')into pyk/console/static/vendor"
fi
