"""bench/micro runs once, untimed (`--benchmark-disable`): a micro-benchmark broken by a change
to what it drives (a new ShardServices field, a new fetch result field) fails here, not on the
day someone next measures with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_micro_benchmarks_run() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--benchmark-disable", "bench/micro"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-500:]
