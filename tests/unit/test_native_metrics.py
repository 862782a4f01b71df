"""RequestStats and InflightResponses (ext/metrics.pyx): the request histograms and a
connection's responses not yet written, native against the reference, and the Python histogram
of the rarer timings (pyk.server.metrics.Log2Histogram) against the same buckets."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref
from pyk.server.metrics import Log2Histogram
from tests.ref.parity import no_deadline

TOTAL, QUEUE, LOCAL, REMOTE, RESPONSE_QUEUE, SEND = range(6)
times = st.integers(0, 10**12)
requests = st.lists(st.tuples(st.integers(-2, 140), times, times, times, times, times, times), max_size=40)


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
        stats.record(3, 0, 0, dt_ns, dt_ns, dt_ns, dt_ns)  # total = local = dt, the others 0
    counts, sums = stats.snapshot()[3]
    total = counts[TOTAL]
    # bucket b holds whole microseconds below 2**b: 0-999 ns in 0, 1 us in 1, 1.999 us in 1, 2 us in 2
    assert total[0] == 2 and total[1] == 2 and total[2] == 1 and total[20] == 1 and total[21] == 1
    assert counts[QUEUE][0] == counts[REMOTE][0] == counts[RESPONSE_QUEUE][0] == counts[SEND][0] == 7
    assert sums[TOTAL] == sums[LOCAL] == sum((0, 999, 1000, 1999, 2000, 1_048_575_999, 1_048_576_000))


def test_done_and_parked_time_requests(impl) -> None:
    stats, responses = impl.RequestStats(), impl.InflightResponses()
    read = time.monotonic_ns()
    stats.done(0, read, responses)
    stats.done(0, read, responses)  # the second frame of the same read waited for the first: queue time
    started, returned = stats.park(read)
    stats.parked(1, read, started, returned, responses)
    stats.done(18, read, None)  # no response (acks=0): its total ends at its answer
    snapshot = stats.snapshot()
    assert sum(snapshot[0][0][LOCAL]) == 2 and sum(snapshot[1][0][LOCAL]) == 1
    assert sum(snapshot[0][0][TOTAL]) == 0 and sum(snapshot[18][0][TOTAL]) == sum(snapshot[18][0][SEND]) == 1
    assert snapshot[0][1][QUEUE] > 0  # queued behind the first
    assert snapshot[1][1][REMOTE] > 0
    assert responses.handed(5) == 5 and len(responses) == 3
    time.sleep(0.001)
    assert responses.written(5) == 2**63 - 1 and not responses  # written: nothing waits
    (produce, produce_sums), (fetch, fetch_sums) = stats.snapshot()[0], stats.snapshot()[1]
    assert sum(produce[TOTAL]) == sum(produce[SEND]) == 2 and sum(fetch[TOTAL]) == 1
    assert produce_sums[SEND] >= 2_000_000 and produce_sums[RESPONSE_QUEUE] > 0  # the first waited for the second
    assert fetch_sums[TOTAL] >= fetch_sums[REMOTE] + fetch_sums[SEND]  # remote and send time are in the total


# A connection's life: ("answer", n) answers n requests, ("hand", parts) hands their responses
# with `parts` more parts, ("write", parts) writes that many more parts, ("close", 0) closes it.
steps = st.lists(st.one_of(st.tuples(st.just("answer"), st.integers(0, 6)),
                           st.tuples(st.just("hand"), st.integers(0, 3)),
                           st.tuples(st.just("write"), st.integers(0, 5)),
                           st.tuples(st.just("close"), st.just(0))), max_size=40)


@no_deadline
@given(steps)
def test_inflight_responses_match_reference(calls) -> None:
    """Which responses are done after each write, and the part count at which the next one is."""
    results = []
    for impl in (native, ref):
        stats, responses = impl.RequestStats(), impl.InflightResponses()
        queued = written = 0
        seen = []
        for op, n in calls:
            if op == "answer":
                for _ in range(n):
                    stats.done(0, 0, responses)
            elif op == "close":
                responses.close()
            elif op == "hand":
                queued += n
                seen.append(responses.handed(queued))
            else:
                written = min(queued, written + n)
                seen.append(responses.written(written))
            counts = stats.snapshot().get(0, ([[0]] * 6, []))[0]
            seen.append((len(responses), [sum(c) for c in counts]))
        results.append(seen)
    assert results[0] == results[1]


def test_inflight_responses_grow_past_their_first_ring() -> None:
    stats, responses = native.RequestStats(), native.InflightResponses()
    for _ in range(3):
        stats.done(7, 0, responses)
    assert responses.handed(1) == 1 and responses.written(1) == 2**63 - 1  # the ring's head moved on
    for _ in range(9):  # wraps the ring of 4, then grows it while wrapped
        stats.done(7, 0, responses)
    assert responses.handed(2) == 2 and len(responses) == 9
    for _ in range(5):
        stats.done(7, 0, responses)
    assert responses.handed(4) == 2
    assert responses.written(3) == 4 and len(responses) == 5
    assert responses.written(4) == 2**63 - 1 and not responses
    assert sum(stats.snapshot()[7][0][TOTAL]) == 17


@given(st.lists(st.integers(-10, 10**13), max_size=30))
def test_log2_histogram_uses_the_request_buckets(durations) -> None:
    histogram, stats = Log2Histogram(), ref.RequestStats()
    for dt in durations:
        histogram.observe(dt)
        stats.record(0, 0, 0, max(dt, 0), max(dt, 0), max(dt, 0), max(dt, 0))
    expected = stats.snapshot().get(0, ([[0] * 64] * 6, [0] * 6))
    assert histogram.snapshot() == (expected[0][TOTAL], expected[1][TOTAL])


def test_a_closed_connection_counts_its_answers_written(impl) -> None:
    """Answered, handed or not, or answered after the close: every request gets its total."""
    stats, responses = impl.RequestStats(), impl.InflightResponses()
    stats.done(0, 0, responses)
    responses.handed(1)
    stats.done(0, 0, responses)
    responses.close()
    stats.done(0, 0, responses)
    assert not responses
    assert sum(stats.snapshot()[0][0][TOTAL]) == 3
