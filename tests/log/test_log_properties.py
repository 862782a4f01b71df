"""Property tests: random appends/reads/crashes keep the log's invariants (hypothesis, small budget)."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.log.conftest import BASE_TS, batch, open_log, read_all, small_config

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(
    sizes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 400)), min_size=1, max_size=40),
    segment_bytes=st.integers(300, 3000),
    interval=st.integers(0, 600),
    cut=st.floats(0.0, 1.0),
)
def test_append_read_crash_reopen(sizes: list[tuple[int, int]], segment_bytes: int, interval: int, cut: float) -> None:
    root = tempfile.mkdtemp()
    try:
        directory = os.path.join(root, "t-0")
        config = small_config(**{"segment.bytes": str(segment_bytes), "index.interval.bytes": str(interval)})
        plog = open_log(directory, config)
        written = []
        for i, (n, value_size) in enumerate(sizes):
            info = plog.append(batch(n, value_size=value_size, ts=BASE_TS + i), BASE_TS + i)
            written.append((info.first_offset, info.last_offset))
        assert read_all(plog) == written
        # Every offset reads from its own batch, and bounded reads never return less than one batch.
        for first, last in written:
            for offset in (first, last):
                data = plog.read(offset, 1)
                assert data.records is not None and data.records.size >= 61
        # kill -9, then a power loss that tears the active segment at a random point.
        active = plog.segments.active
        keep = int(active.size * cut)
        survivors = [w for w in written if plog.read(w[0], 1).records.fd != active.fd
                     or plog.read(w[0], 1).records.position + plog.read(w[0], 1).records.size <= keep]
        path = active.log_path
        for segment in plog.segments:
            os.close(segment.fd)
        with open(path, "r+b") as fh:
            fh.truncate(keep)
        again = open_log(directory, config)
        assert read_all(again) == survivors
        expected_end = survivors[-1][1] + 1 if survivors else 0
        assert again.log_end_offset == expected_end
        assert again.append(batch(2), BASE_TS).first_offset == expected_end
        again.close()
        reopened = open_log(directory, config, had_clean_shutdown=True, recovery_point=expected_end + 2)
        assert read_all(reopened) == survivors + [(expected_end, expected_end + 1)]
        reopened.close()
    finally:
        shutil.rmtree(root)
