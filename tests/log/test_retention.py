"""Retention of a PartitionLog on a temp dir: time and size breaches, log start movement, the
interplay with DeleteRecords, and asynchronous deletion (rename to `.deleted`, removal after
file.delete.delay.ms) with a FileSlice read before the deletion still intact afterwards."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk.log.partition_log import PartitionLog
from pyk.log.retention import deletable_segments
from tests.log.conftest import BASE_TS, batch, open_log, read_all, shared_io, small_config

HOUR = 3_600_000


def fill(plog: PartitionLog, batches: int, ts: int = BASE_TS, records: int = 3) -> None:
    keys = plog.config.compact  # a compacted log accepts only keyed records
    for i in range(batches):
        plog.append(batch(records, ts=ts + i, keys=keys), ts + i)


def drain_deleter() -> None:
    """Waits for the removals already handed to the background deleter."""
    shared_io().file_delete.submit(lambda: None).result(timeout=10)


def files(directory: str, suffix: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(suffix))


def test_time_breach_deletes_old_segments_and_moves_log_start(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"retention.ms": str(HOUR), "file.delete.delay.ms": "1000"}))
    fill(plog, 30, ts=BASE_TS)  # old data
    old_bases = [s.base_offset for s in plog.segments]
    fill(plog, 30, ts=BASE_TS + 2 * HOUR)  # recent data: a later segment boundary
    recent_first = next(s for s in plog.segments if s.base_offset > old_bases[-1])
    now = BASE_TS + 2 * HOUR + 100
    # Every segment holding only old data goes; the one where the new data starts stays, since
    # its largest timestamp is recent (the old records in it wait for the whole segment to expire).
    expected = [s.base_offset for s in plog.segments if s.max_timestamp < now - HOUR]
    assert expected == old_bases[:-1] or expected == old_bases
    end = plog.log_end_offset
    assert plog.delete_old_segments(now) == len(expected)
    first = plog.segments.first
    assert plog.log_start_offset == first.base_offset > 0
    assert first.base_offset <= recent_first.base_offset
    assert plog.log_end_offset == plog.high_watermark == end
    assert read_all(plog)[0][0] == plog.log_start_offset
    # Renamed at once, removed only after file.delete.delay.ms.
    deleted = files(log_dir, ".deleted")
    assert {n.split(".")[1] for n in deleted} == {"log", "index", "timeindex"}
    assert len(files(log_dir, ".log.deleted")) == len(expected)
    plog.flush_if_due(now + 999)
    drain_deleter()
    assert len(files(log_dir, ".log.deleted")) == len(expected)
    plog.flush_if_due(now + 1000)
    drain_deleter()
    assert files(log_dir, ".deleted") == []
    assert plog.delete_old_segments(now) == 0  # idempotent
    plog.close()


def test_infinite_retention_and_compact_policy_keep_everything(log_dir: str) -> None:
    for overrides in ({"retention.ms": "-1"}, {"retention.ms": "1", "cleanup.policy": "compact"}):
        plog = open_log(log_dir, small_config(**overrides))
        fill(plog, 30)
        count = len(plog.segments)
        assert plog.delete_old_segments(BASE_TS + 10 * HOUR) == 0
        assert len(plog.segments) == count and plog.log_start_offset == 0
        plog.close()


def test_future_timestamps_protect_later_segments(log_dir: str) -> None:
    # Deletion is a prefix: a segment that is kept keeps everything after it (Kafka does the same).
    plog = open_log(log_dir, small_config(**{"retention.ms": str(HOUR)}))
    fill(plog, 10, ts=BASE_TS + 10 * HOUR)
    fill(plog, 30, ts=BASE_TS)
    assert plog.delete_old_segments(BASE_TS + 3 * HOUR) == 0
    plog.close()


def test_all_data_expired_rolls_and_deletes_the_active_segment(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"retention.ms": str(HOUR)}))
    fill(plog, 30)
    end = plog.log_end_offset
    count = len(plog.segments)
    assert plog.delete_old_segments(BASE_TS + 2 * HOUR) == count
    # Kafka: a log always has a segment, so an empty one was rolled at the log end first.
    assert len(plog.segments) == 1 and plog.segments.active.size == 0
    assert plog.segments.active.base_offset == plog.log_start_offset == plog.log_end_offset == end
    assert plog.read(end, 100).records is None
    # An empty last segment is never deleted (nor rolled again).
    assert plog.delete_old_segments(BASE_TS + 3 * HOUR) == 0
    info = plog.append(batch(2, ts=BASE_TS + 3 * HOUR), BASE_TS + 3 * HOUR)
    assert info.first_offset == end and read_all(plog) == [(end, end + 1)]
    plog.close()
    reopened = open_log(log_dir, small_config(**{"retention.ms": str(HOUR)}), had_clean_shutdown=True)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (end, end + 2)
    assert files(log_dir, ".deleted") == []
    reopened.close()


def test_size_breach_keeps_the_partition_under_the_bound(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"retention.bytes": "5000"}))
    fill(plog, 120)
    sizes = [s.size for s in plog.segments]
    assert sum(sizes) > 3 * 5000
    deleted = plog.delete_old_segments(BASE_TS)
    remaining = [s.size for s in plog.segments]
    assert remaining == sizes[deleted:]
    # Kafka's rule: delete the oldest while what remains is still >= retention.bytes, so the
    # log ends up at most one segment above the bound and never below it.
    assert sum(remaining) >= 5000
    assert sum(remaining) - remaining[0] < 5000
    assert plog.log_start_offset == plog.segments.first.base_offset
    plog.close()


def test_delete_records_and_retention_together(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"retention.bytes": "4000"}))
    fill(plog, 60)
    third = list(plog.segments)[2]
    # DeleteRecords into the middle of the third segment: the first two go at once.
    assert plog.delete_records_before(third.base_offset + 1) == third.base_offset + 1
    assert plog.segments.first is third
    # Retention then deletes by size but never moves the log start backwards: the start stays
    # inside `third` while it survives, and moves to a later segment's base once it goes.
    plog.delete_old_segments(BASE_TS)
    if plog.segments.first is third:
        assert plog.log_start_offset == third.base_offset + 1
    else:
        assert plog.log_start_offset == plog.segments.first.base_offset > third.base_offset
    assert read_all(plog)[0][1] >= plog.log_start_offset
    plog.close()


def test_slice_read_before_deletion_stays_intact(log_dir: str) -> None:
    """A fetch in flight: the FileSlice handed out before deletion sends the same bytes after it."""
    plog = open_log(log_dir, small_config(**{"retention.ms": str(HOUR), "file.delete.delay.ms": "5000"}))
    fill(plog, 30)
    fill(plog, 10, ts=BASE_TS + 2 * HOUR)
    slice_ = plog.read(0, 1 << 20).records
    before = os.pread(slice_.fd, slice_.size, slice_.position)
    now = BASE_TS + 2 * HOUR + 10
    assert plog.delete_old_segments(now) > 0 and plog.log_start_offset > 0
    assert not os.path.exists(os.path.join(log_dir, "00000000000000000000.log"))
    assert os.path.exists(os.path.join(log_dir, "00000000000000000000.log.deleted"))
    # The connection sends with sendfile from the fd; it sees the renamed file unchanged.
    r, w = os.pipe()
    try:
        sent = os.sendfile(w, slice_.fd, slice_.position, slice_.size) if slice_.size < 65536 else None
        if sent is not None:
            assert os.read(r, slice_.size) == before
    finally:
        os.close(r)
        os.close(w)
    assert os.pread(slice_.fd, slice_.size, slice_.position) == before
    plog.flush_if_due(now + 4999)
    os.fstat(slice_.fd)  # still open before the delay
    plog.flush_if_due(now + 5000)
    drain_deleter()
    assert files(log_dir, ".deleted") == []
    plog.close()


def test_crash_after_retention_recovers_log_start_from_segments(log_dir: str) -> None:
    # Retention does not fsync a checkpoint: after a crash the stale (older) checkpointed log
    # start is raised to the first remaining segment, and leftover .deleted files are removed.
    config = small_config(**{"retention.ms": str(HOUR)})
    plog = open_log(log_dir, config)
    fill(plog, 30)
    fill(plog, 10, ts=BASE_TS + 2 * HOUR)
    plog.flush()
    assert plog.delete_old_segments(BASE_TS + 2 * HOUR + 10) > 0
    start, end = plog.log_start_offset, plog.log_end_offset
    assert files(log_dir, ".deleted")
    for segment in plog.segments:  # kill -9: no close, no checkpoint, no epoch file rewrite
        os.close(segment.fd)
    reopened = open_log(log_dir, config, log_start_offset=0, recovery_point=end)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (start, end)
    assert files(log_dir, ".deleted") == []
    assert reopened.epoch_cache.entries[0][1] == start
    reopened.close()


def test_deletable_segments_never_pass_the_high_watermark(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"retention.ms": "0"}))
    fill(plog, 60)
    segments = list(plog.segments)
    everything = deletable_segments(segments, log_start_offset=0, high_watermark=plog.high_watermark,
                                    log_end_offset=plog.log_end_offset, config=plog.config, now_ms=BASE_TS + HOUR)
    assert [d.segment for d in everything] == segments
    hw = segments[3].base_offset + 1  # inside the fourth segment
    held = deletable_segments(segments, log_start_offset=0, high_watermark=hw, log_end_offset=plog.log_end_offset,
                              config=plog.config, now_ms=BASE_TS + HOUR)
    assert [d.segment for d in held] == segments[:3]
    assert "retention time 0ms breach based on the largest record timestamp" in held[0].reason
    plog.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 100)), min_size=1, max_size=60),
       retention_bytes=st.integers(0, 20_000), retention_ms=st.integers(-1, 120), now=st.integers(0, 200),
       delete_before=st.integers(0, 400))
def test_retention_invariants(batches: list[tuple[int, int]], retention_bytes: int, retention_ms: int, now: int,
                              delete_before: int) -> None:
    """Whatever the data and settings: a prefix goes, the log start is the first remaining base
    (or the DeleteRecords point inside it), no offset is lost above it, and each rule holds."""
    with tempfile.TemporaryDirectory() as tmp:
        config = small_config(**{"retention.bytes": str(retention_bytes), "retention.ms": str(retention_ms)})
        plog = open_log(os.path.join(tmp, "t-0"), config)
        for records, ts in batches:
            plog.append(batch(records, ts=BASE_TS + ts), BASE_TS + ts)
        plog.delete_records_before(min(delete_before, plog.high_watermark))
        before = list(plog.segments)
        start_before, end = plog.log_start_offset, plog.log_end_offset
        deleted = plog.delete_old_segments(BASE_TS + now)
        after = list(plog.segments)
        assert plog.log_end_offset == plog.high_watermark == end
        assert plog.log_start_offset == max(start_before, after[0].base_offset)
        survivors = [s for s in before if s in after]
        assert survivors == after[: len(survivors)] and before[len(before) - len(survivors):] == survivors
        if deleted and survivors and after[0].size:
            kept = sum(s.size for s in after)
            # The walk stopped at after[0]: some rule kept it.
            size_keeps = retention_bytes > kept - after[0].size
            time_keeps = retention_ms < 0 or BASE_TS + now - after[0].largest_timestamp <= retention_ms
            assert size_keeps and time_keeps or after[0] is plog.segments.active
        if plog.log_start_offset < end:
            assert read_all(plog)[0][1] >= plog.log_start_offset
        plog.close()


def test_pass_waits_for_a_running_roll_flush(log_dir: str) -> None:
    # The roll-flush thread may be syncing the segments a pass would unmap: the pass skips the
    # log until that flush is done, then deletes as usual.
    from concurrent.futures import Future

    plog = open_log(log_dir, small_config(**{"retention.ms": str(HOUR)}))
    fill(plog, 30)
    fill(plog, 5, ts=BASE_TS + 2 * HOUR)
    running: Future[None] = Future()
    plog._roll_flush = running
    assert plog.delete_old_segments(BASE_TS + 2 * HOUR) == 0
    running.set_result(None)
    assert plog.delete_old_segments(BASE_TS + 2 * HOUR) > 0
    plog.close()
