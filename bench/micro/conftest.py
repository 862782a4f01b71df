"""Shared inputs of the micro-benchmarks (not collected by the default test run: pyproject's
testpaths is ["tests"]).  Run from the repository root:

    python -m pytest bench/micro --benchmark-only

Batches are built with the tests' own builder (tests/ref/builder.py), as the native-vs-reference
tests do, so a benchmark measures the same kind of input the tests check.  Payloads are
JSON-like log lines (pyk.bench.batches.payloads), so codec ratios resemble real traffic.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark", reason="micro-benchmarks need the bench extra (pip install -e .[bench])")

from bench_inputs import make_batch  # noqa: E402


@pytest.fixture(scope="session")
def batch_100() -> bytearray:
    """100 records x 100 B (~10 KiB): a typical lingering producer's batch."""
    return make_batch(100)


@pytest.fixture(scope="session")
def batch_1000() -> bytearray:
    """1000 records x 100 B (~108 KiB): a saturated producer's batch."""
    return make_batch(1000)
