"""RequestStats (ext/metrics.pyx): the request histograms, native against the reference, and the
Python histogram of the rarer timings (pyk.server.metrics.Log2Histogram) against the same buckets."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref
from pyk.server.metrics import Log2Histogram
from tests.ref.parity import no_deadline

times = st.integers(0, 10**12)
requests = st.lists(st.tuples(st.integers(-2, 140), times, times, times, times), max_size=40)


@no_deadline
@given(requests)
def test_record_matches_reference(calls) -> None:
    native_stats, ref_stats = native.RequestStats(), ref.RequestStats()
    for api, *stamps in calls:
        native_stats.record(api, *stamps)
        ref_stats.record(api, *stamps)
    assert native_stats.snapshot() == ref_stats.snapshot()


def test_bucket_edges() -> None:
    stats = native.RequestStats()
    for dt_ns in (0, 999, 1000, 1999, 2000, 1_048_575_999, 1_048_576_000):
        stats.record(3, 0, 0, dt_ns, dt_ns)  # total = local = dt, queue = remote = 0
    counts, sums = stats.snapshot()[3]
    total = counts[0]
    # bucket b holds whole microseconds below 2**b: 0-999 ns in 0, 1 us in 1, 1.999 us in 1, 2 us in 2
    assert total[0] == 2 and total[1] == 2 and total[2] == 1 and total[20] == 1 and total[21] == 1
    assert counts[1][0] == counts[3][0] == 7
    assert sums[0] == sums[2] == sum((0, 999, 1000, 1999, 2000, 1_048_575_999, 1_048_576_000))


def test_done_and_parked_time_requests(impl) -> None:
    stats = impl.RequestStats()
    read = time.monotonic_ns()
    stats.done(0, read)
    stats.done(0, read)  # the second frame of the same read waited for the first: queue time
    started, answered = stats.park(read)
    stats.parked(1, read, started, answered)
    snapshot = stats.snapshot()
    (produce, produce_sums), (fetch, fetch_sums) = snapshot[0], snapshot[1]
    assert sum(produce[0]) == 2 and sum(fetch[0]) == 1
    assert produce_sums[1] > 0  # queued behind the first
    assert fetch_sums[3] > 0 and fetch_sums[0] >= fetch_sums[3]  # remote time is part of the total


@given(st.lists(st.integers(-10, 10**13), max_size=30))
def test_log2_histogram_uses_the_request_buckets(durations) -> None:
    histogram, stats = Log2Histogram(), ref.RequestStats()
    for dt in durations:
        histogram.observe(dt)
        stats.record(0, 0, 0, max(dt, 0), max(dt, 0))
    expected = stats.snapshot().get(0, ([[0] * 64] * 4, [0] * 4))
    assert histogram.snapshot() == (expected[0][0], expected[1][0])
