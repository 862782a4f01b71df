"""PartitionLog append/read/offset lookups on a temp dir, across many segment rolls."""

from __future__ import annotations

import os
import struct

import pytest

from pyk.errors import ErrorCode, KafkaError
from pyk.log.partition_log import PartitionLog
from tests.log.conftest import BASE_TS, batch, open_log, read_all, small_config
from tests.ref.batch import batch_info
from tests.ref.builder import Record, build_batch


def fill(plog: PartitionLog, batches: int, records: int = 3, start_ts: int = BASE_TS) -> list[tuple[int, int]]:
    out = []
    for i in range(batches):
        info = plog.append(batch(records, ts=start_ts + 10 * i), start_ts + 10 * i)
        out.append((info.first_offset, info.last_offset))
    return out


def test_round_trip_across_rolls(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 60)
    assert written[0] == (0, 2) and written[-1] == (177, 179)
    assert len(plog.segments) > 5, "small segment.bytes must roll"
    assert plog.log_end_offset == plog.high_watermark == 180
    assert read_all(plog) == written
    names = sorted(os.listdir(log_dir))
    assert "00000000000000000000.log" in names and "00000000000000000000.index" in names
    assert all(len(n.split(".")[0]) == 20 for n in names if n.endswith((".log", ".index", ".timeindex")))
    # Every batch carries its assigned offsets and the leader epoch (0 on a single node).
    seg = plog.segments.first
    info = batch_info(os.pread(seg.fd, 61, 0))
    assert (info.base_offset, info.partition_leader_epoch) == (0, 0)
    plog.close()


def test_read_at_every_offset_starts_at_containing_batch(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 40)
    for first, last in written:
        for offset in range(first, last + 1):
            data = plog.read(offset, 1)  # min_one_message: the whole first batch
            assert data.records is not None
            info = batch_info(os.pread(data.records.fd, 61, data.records.position))
            assert (info.base_offset, info.last_offset) == (first, last)
            assert data.records.size == info.size
    plog.close()


def test_read_limits(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "100000"}))
    fill(plog, 10)
    size = plog.read(0, 1).records.size  # one batch
    partial = plog.read(0, size + 10)
    assert partial.records.size == size + 10  # a partial last batch, as Kafka sends
    assert plog.read(0, 1, min_one_message=False).records is None  # no partial first batch (Kafka's firstEntryIncomplete)
    assert plog.read(0, size, min_one_message=False).records.size == size
    assert plog.read(0, 0, min_one_message=False).records is None
    whole = plog.read(0, 1 << 20)
    assert whole.records.size == plog.segments.active.size
    end = plog.read(plog.log_end_offset, 100)
    assert end.records is None and end.high_watermark == 30 and end.log_end_offset == 30
    assert plog.read(0, 1 << 20, max_offset=6).records.size == 2 * size  # stops before offset 6's batch
    for bad in (-1, 31):
        with pytest.raises(KafkaError) as err:
            plog.read(bad, 100)
        assert err.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    plog.close()


def test_read_never_crosses_a_segment(log_dir: str) -> None:
    plog = open_log(log_dir)
    fill(plog, 30)
    first = plog.segments.first
    data = plog.read(0, 1 << 20)
    assert data.records.fd == first.fd and data.records.size == first.size


def test_big_batches_beyond_scan_window(log_dir: str) -> None:
    # Batches larger than the 64 KiB pread window are found from their headers alone.
    plog = open_log(log_dir, small_config(**{"segment.bytes": "10000000", "max.message.bytes": "2000000"}))
    written = []
    for i in range(6):
        info = plog.append(batch(3, value_size=50_000), BASE_TS + i)
        written.append((info.first_offset, info.last_offset))
    assert read_all(plog) == written
    for first, last in written:
        data = plog.read(last, 10)
        assert batch_info(os.pread(data.records.fd, 61, data.records.position)).base_offset == first
    plog.close()


def test_offset_for_timestamp_and_max_timestamp(log_dir: str) -> None:
    plog = open_log(log_dir)
    # batch i holds records with timestamps BASE_TS + 10*i + (0, 1, 2) at offsets 3i..3i+2
    fill(plog, 50)
    for i in range(50):
        for j in range(3):
            assert plog.offset_for_timestamp(BASE_TS + 10 * i + j) == (3 * i + j, BASE_TS + 10 * i + j)
        assert plog.offset_for_timestamp(BASE_TS + 10 * i + 5) == (3 * (i + 1), BASE_TS + 10 * (i + 1)) \
            if i < 49 else plog.offset_for_timestamp(BASE_TS + 10 * i + 5) is None
    assert plog.offset_for_timestamp(0) == (0, BASE_TS)
    assert plog.max_timestamp_and_offset() == (149, BASE_TS + 492)
    plog.close()


def test_time_lookup_with_out_of_order_timestamps(log_dir: str) -> None:
    plog = open_log(log_dir)
    stamps = [BASE_TS + s for s in (50, 10, 90, 30, 70, 20, 95, 5)]
    for i, ts in enumerate(stamps):
        plog.append(batch(2, timestamps=[ts, ts - 1]), BASE_TS + i)
    # first record (in offset order) with timestamp >= target
    assert plog.offset_for_timestamp(BASE_TS + 60) == (4, BASE_TS + 90)
    assert plog.offset_for_timestamp(BASE_TS + 91) == (12, BASE_TS + 95)
    assert plog.max_timestamp_and_offset() == (12, BASE_TS + 95)


def test_log_append_time_rewrites_batch(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"message.timestamp.type": "LogAppendTime"}))
    now = BASE_TS + 123_456
    info = plog.append(batch(3, ts=BASE_TS), now)
    assert info.log_append_time == now
    data = plog.read(0, 1000).records
    raw = os.pread(data.fd, data.size, data.position)
    header = batch_info(raw)
    assert header.timestamp_type == 1 and header.max_timestamp == now
    from pyk import _native

    assert _native.validate_batch(raw, 10**6) == 0  # CRC recomputed after the rewrite
    assert plog.offset_for_timestamp(now) == (0, now)
    assert plog.offset_for_timestamp(BASE_TS) == (0, now)


def test_create_time_bounds_and_invalid_batches(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"message.timestamp.after.max.ms": "1000",
                                             "max.message.bytes": "500"}))
    with pytest.raises(KafkaError) as err:
        plog.append(batch(1, ts=BASE_TS + 5000), BASE_TS)
    assert err.value.code == ErrorCode.INVALID_TIMESTAMP
    with pytest.raises(KafkaError) as err:
        plog.append(batch(3, value_size=300), BASE_TS)
    assert err.value.code == ErrorCode.MESSAGE_TOO_LARGE
    corrupt = batch(1)
    corrupt[-1] ^= 0xFF
    with pytest.raises(KafkaError) as err:
        plog.append(corrupt, BASE_TS)
    assert err.value.code == ErrorCode.CORRUPT_MESSAGE
    assert plog.log_end_offset == 0 and plog.segments.active.size == 0


def test_delete_records_before(log_dir: str) -> None:
    plog = open_log(log_dir)
    fill(plog, 60)
    segments_before = len(plog.segments)
    second = list(plog.segments)[1]
    assert plog.delete_records_before(second.base_offset + 1) == second.base_offset + 1
    assert plog.segments.first is second
    assert len(plog.segments) == segments_before - 1
    assert not os.path.exists(os.path.join(log_dir, "00000000000000000000.log"))
    with pytest.raises(KafkaError) as err:
        plog.read(second.base_offset, 100)
    assert err.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert plog.read(second.base_offset + 1, 100).records is not None
    assert plog.delete_records_before(3) == second.base_offset + 1  # never moves backwards
    with pytest.raises(KafkaError):
        plog.delete_records_before(plog.high_watermark + 1)
    assert plog.delete_records_before(plog.high_watermark) == 180
    assert len(plog.segments) == 1 and plog.read(180, 10).records is None
    plog.close()
    reopened = open_log(log_dir, log_start_offset=180, had_clean_shutdown=True)
    assert reopened.log_start_offset == 180 and reopened.log_end_offset == 180


def test_deleted_segment_fd_outlives_deletion(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"file.delete.delay.ms": "1000"}))
    fill(plog, 30)
    slice_ = plog.read(0, 100).records
    deleted = os.fstat(slice_.fd)
    plog.delete_records_before(list(plog.segments)[1].base_offset, now_ms=0)
    assert len(os.pread(slice_.fd, slice_.size, slice_.position)) == slice_.size  # still readable
    plog.flush_if_due(500)
    assert _open_fds_of(deleted) == [slice_.fd]
    plog.flush_if_due(1000)
    # By the file, not the fd number: a background thread (the roll flush this tick started)
    # may open a file that takes the freed number at once.
    assert _open_fds_of(deleted) == []
    plog.close()


def _open_fds_of(file: os.stat_result) -> list[int]:
    """This process's fds open on `file` (found by device and inode, so also once unlinked)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile (or the listing's own fd)
        if (st.st_dev, st.st_ino) == (file.st_dev, file.st_ino):
            found.append(int(name))
    return found


def test_leader_epoch_cache(log_dir: str) -> None:
    plog = open_log(log_dir)
    assert plog.end_offset_for_epoch(0) == (-1, -1)
    fill(plog, 3)
    assert plog.end_offset_for_epoch(0) == (0, 9)
    plog.leader_epoch = 2
    fill(plog, 2)
    assert plog.end_offset_for_epoch(0) == (0, 9)
    assert plog.end_offset_for_epoch(1) == (0, 9)
    assert plog.end_offset_for_epoch(2) == (2, 15)
    assert plog.end_offset_for_epoch(3) == (-1, -1)
    with open(os.path.join(log_dir, "leader-epoch-checkpoint")) as fh:
        assert fh.read() == "0\n2\n0 0\n2 9\n"
    plog.close()


def test_a_follower_epoch_cache_follows_the_appended_batches_epochs(log_dir: str) -> None:
    """KIP-101: a follower records each epoch of the leader's batches where it starts, so as a
    later leader it answers OffsetForLeaderEpoch for them (a diverged old leader truncates to
    the end of its own latest epoch) and as a follower it asks for the right epoch."""
    records = [Record(b"x", timestamp=BASE_TS)]
    fetched = (build_batch(records * 2, base_offset=0, partition_leader_epoch=0)
               + build_batch(records * 3, base_offset=2, partition_leader_epoch=0)
               + build_batch(records * 4, base_offset=5, partition_leader_epoch=3))
    plog = open_log(log_dir)
    plog.replicated = True
    plog.append_as_follower(memoryview(fetched), BASE_TS)
    assert plog.epoch_cache.entries == [(0, 0), (3, 5)] and plog.log_end_offset == 9
    assert plog.end_offset_for_epoch(0) == (0, 5)
    assert plog.end_offset_for_epoch(2) == (0, 5)
    assert plog.end_offset_for_epoch(3) == (3, 9)
    plog.close()
    plog = open_log(log_dir, had_clean_shutdown=True)
    assert plog.epoch_cache.entries == [(0, 0), (3, 5)]  # the leader-epoch-checkpoint kept them
    plog.truncate_to(5)
    assert plog.epoch_cache.latest_epoch == 0 and plog.end_offset_for_epoch(0) == (0, 5)
    plog.close()


def test_flush_policy_by_messages(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"flush.messages": "5"}))
    fill(plog, 1)
    assert plog.recovery_point == 0 and plog.unflushed_messages == 3
    fill(plog, 1)
    assert plog.recovery_point == 6 and plog.unflushed_messages == 0


def test_flush_policy_by_time(log_dir: str) -> None:
    # A clock of its own, so no bound on future timestamps (the records carry real ones).
    plog = open_log(log_dir, small_config(**{"flush.ms": "100", "message.timestamp.after.max.ms": str(2**63 - 1)}),
                    now_ms=0)
    plog.append(batch(1), 10)
    plog.flush_if_due(50)
    assert plog.recovery_point == 0
    plog.flush_if_due(100)
    assert plog.recovery_point == 1


def test_roll_flushes_old_segments_on_timer(log_dir: str) -> None:
    """The rolled segments' fdatasync runs on a background thread (a 1 GiB flush would stall the
    event loop for seconds); the recovery point moves on a later tick, once it is done."""
    plog = open_log(log_dir)
    fill(plog, 30)
    assert plog.recovery_point == 0
    plog.flush_if_due(BASE_TS)
    pending = plog._roll_flush
    assert pending is not None and plog.recovery_point == 0
    pending.result(timeout=10)
    plog.flush_if_due(BASE_TS + 100)
    assert plog.recovery_point == plog.segments.active.base_offset


def test_time_based_roll(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "1000000", "segment.ms": "1000"}))
    plog.append(batch(1, ts=BASE_TS), BASE_TS)
    plog.append(batch(1, ts=BASE_TS + 999), BASE_TS + 999)
    assert len(plog.segments) == 1
    plog.append(batch(1, ts=BASE_TS + 1001), BASE_TS + 1001)
    assert len(plog.segments) == 2 and plog.segments.active.base_offset == 2


def test_index_full_rolls(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "1000000", "segment.index.bytes": "32",
                                             "index.interval.bytes": "0"}))
    fill(plog, 20)
    assert len(plog.segments) > 3
    assert read_all(plog) == [(3 * i, 3 * i + 2) for i in range(20)]
    for segment in list(plog.segments)[:-1]:
        assert os.path.getsize(segment.offset_index.path) <= 32


@pytest.mark.parametrize(("setting", "produced", "stored"), [
    ("zstd", 0, 4), ("gzip", 3, 1), ("lz4", 2, 3), ("snappy", 0, 2), ("uncompressed", 1, 0), ("producer", 4, 4),
])
def test_compression_type(log_dir: str, setting: str, produced: int, stored: int) -> None:
    from pyk import _native

    plog = open_log(log_dir, small_config(**{"compression.type": setting, "segment.bytes": "100000"}))
    for i in range(3):
        plog.append(batch(5, compression=produced, ts=BASE_TS + 10 * i), BASE_TS)
    data = plog.read(0, 100000).records
    raw = os.pread(data.fd, data.size, data.position)
    pos = 0
    while pos < len(raw):
        info = batch_info(raw, pos)
        assert info.compression == stored
        assert _native.validate_batch(raw[pos:pos + info.size], 10**6) == 0
        pos += info.size
    # Timestamp lookups find the record inside compressed batches too.
    assert plog.offset_for_timestamp(BASE_TS + 13) == (8, BASE_TS + 13)
    assert plog.max_timestamp_and_offset() == (14, BASE_TS + 24)


def test_writes_are_one_os_write(log_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = open_log(log_dir)
    plog.append(batch(1), BASE_TS)  # the first append of an epoch also writes leader-epoch-checkpoint
    calls = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: calls.append(len(data)) or real(fd, data))
    b = batch(4)
    plog.append(b, BASE_TS)
    assert calls == [len(b)]


def test_storage_error_leaves_no_partial_batch(log_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = open_log(log_dir)
    plog.append(batch(1), BASE_TS)
    size = plog.segments.active.size
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data)[:10]))
    with pytest.raises(KafkaError) as err:
        plog.append(batch(1), BASE_TS)
    assert err.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.setattr(os, "write", real)
    assert os.path.getsize(plog.segments.active.log_path) == size and plog.log_end_offset == 1
    assert plog.append(batch(1), BASE_TS).first_offset == 1
    assert struct.unpack(">q", os.pread(plog.segments.active.fd, 8, size))[0] == 1


def test_truncate_to(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = []
    for seq in range(0, 80, 2):
        info = plog.append(batch(2, producer_id=9, producer_epoch=0, base_sequence=seq), BASE_TS + seq)
        written.append((info.first_offset, info.last_offset))
    segments = list(plog.segments)
    cut = segments[2].base_offset + 4  # inside the third segment, on a batch boundary
    plog.truncate_to(cut)
    assert plog.log_end_offset == plog.high_watermark == cut
    assert len(plog.segments) == 3 and plog.segments.active is segments[2]
    assert read_all(plog) == [w for w in written if w[1] < cut]
    # Producer state follows: the next sequence is the one after the last kept batch.
    dup = plog.append(batch(2, producer_id=9, producer_epoch=0, base_sequence=cut - 2), BASE_TS)
    assert dup.duplicate and dup.first_offset == cut - 2
    nxt = plog.append(batch(2, producer_id=9, producer_epoch=0, base_sequence=cut), BASE_TS)
    assert nxt.first_offset == cut and not nxt.duplicate
    assert plog.offset_for_timestamp(BASE_TS + 78) is None
    plog.truncate_to(segments[1].base_offset)  # exactly at a segment start
    assert plog.log_end_offset == segments[1].base_offset and len(plog.segments) == 1
    assert plog.end_offset_for_epoch(0) == (0, segments[1].base_offset)
    plog.close()
    again = open_log(log_dir, had_clean_shutdown=True, recovery_point=plog.log_end_offset)
    assert read_all(again) == [w for w in written if w[1] < segments[1].base_offset]


def test_writeback_starts_in_whole_pages(log_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """segment.writeback.bytes: every so many appended bytes the kernel is asked to write back
    the new whole pages (never the partial last page the next append writes into)."""
    from pyk.log import segment as segment_module

    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(segment_module, "_start_writeback", lambda fd, offset, n: calls.append((fd, offset, n)))
    plog = open_log(log_dir, small_config(**{"segment.bytes": "100000000", "segment.writeback.bytes": "10000"}))
    active = plog.segments.active
    for i in range(200):
        plog.append(batch(10, ts=BASE_TS + i), BASE_TS + i)
        # A request still in flight makes the next append skip (tested below); waiting for it
        # here, as an idle disk would finish it, keeps every range within the bound.
        if active.writeback is not None:
            active.writeback.result()
    assert calls, "no writeback was started"
    assert all(fd == active.fd for fd, _, _ in calls)
    assert calls[0][1] == 0
    for (_, offset, n), (_, following, _) in zip(calls, calls[1:], strict=False):
        assert offset + n == following, "ranges are contiguous"
    for _, offset, n in calls:
        assert offset % segment_module._PAGE_SIZE == 0 and n % segment_module._PAGE_SIZE == 0
        assert n >= 10000
    end = calls[-1][1] + calls[-1][2]
    assert end <= active.size < end + 10000 + segment_module._PAGE_SIZE
    plog.close()


def test_writeback_in_flight_makes_the_next_request_cover_more(log_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that is slow to take a request: appends meanwhile queue nothing more, and the
    next request after it finished covers every whole page appended since."""
    import threading

    from pyk.log import segment as segment_module

    calls: list[tuple[int, int]] = []
    release = threading.Event()

    def slow_writeback(fd: int, offset: int, n: int) -> None:
        calls.append((offset, n))
        release.wait(60)

    monkeypatch.setattr(segment_module, "_start_writeback", slow_writeback)
    plog = open_log(log_dir, small_config(**{"segment.bytes": "100000000", "segment.writeback.bytes": "10000"}))
    active = plog.segments.active
    while active.writeback is None:
        fill(plog, 1, records=10)
    first = active.writeback
    fill(plog, 100, records=10)
    assert active.writeback is first, "no second request while the first is in flight"
    release.set()
    first.result()
    assert calls == [(0, calls[0][1])]
    fill(plog, 1, records=10)
    assert active.writeback is not first
    active.writeback.result()
    end = active.size & ~(segment_module._PAGE_SIZE - 1)
    assert calls[1] == (calls[0][1], end - calls[0][1])
    plog.close()


def test_writeback_off(log_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyk.log import segment as segment_module

    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(segment_module, "_start_writeback", lambda fd, offset, n: calls.append((fd, offset, n)))
    plog = open_log(log_dir, small_config(**{"segment.writeback.bytes": "0"}))
    fill(plog, 100, records=10)
    assert plog.segments.active.writeback is None, "no request was submitted"
    assert calls == []
    plog.close()


def test_writeback_call_reaches_the_kernel(tmp_path) -> None:
    """The real sync_file_range: a range of a written file starts writeback without an error."""
    from pyk.log import segment as segment_module

    assert segment_module._sync_file_range is not None, "Linux libc has sync_file_range"
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"x" * 65536)
        assert segment_module._sync_file_range(fd, 0, 65536, segment_module._SYNC_FILE_RANGE_WRITE) == 0
    finally:
        os.close(fd)
