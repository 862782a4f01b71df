"""LogCleaner on real PartitionLogs (no broker): compaction results, multi-pass cleaning with a
small offset map, tombstone delete horizons, producer state, keyless records, and recovery of
a segment swap interrupted at each step."""

from __future__ import annotations

import os
import time

import pytest
from kafka.record.default_records import DefaultRecordBatch

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.checkpoint import read_offsets
from pyk.log.cleaner import CleanerConfig, LogCleaner
from pyk.log.config import LogConfig
from pyk.log.files import CLEANER_OFFSET_CHECKPOINT
from pyk.log.manager import LogManager
from pyk.log.partition_log import PartitionLog
from tests.log.conftest import CleanerCrash, compact_config, crash_cleaner_at, shared_io
from tests.ref.builder import Record, build_batch

KEYS = 100
VERSIONS = 10



def append(plog: PartitionLog, records: list[Record], **kw: object) -> int:
    now = int(time.time() * 1000)
    recs = [Record(value=r.value, key=r.key, timestamp=now) for r in records]
    info = plog.append(memoryview(bytearray(build_batch(recs, base_timestamp=now, **kw))), now)  # type: ignore[arg-type]
    return info.first_offset


def fill(plog: PartitionLog, keys: int = KEYS, versions: int = VERSIONS) -> dict[bytes, tuple[int, bytes | None]]:
    """keys x versions records, 10 per batch, codecs rotating; returns key -> (offset, value) of the latest."""
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    pending: list[Record] = []
    for v in range(versions):
        for k in range(keys):
            pending.append(Record(value=b"v%d-%d" % (k, v), key=b"k%d" % k))
            if len(pending) == 10:
                first = append(plog, pending, compression=(len(latest) + v) % 5)
                for i, r in enumerate(pending):
                    latest[r.key] = (first + i, r.value)  # type: ignore[index]
                pending = []
    return latest


def records(plog: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record readable from the log start, through read()."""
    out = []
    offset = plog.log_start_offset
    while offset < plog.high_watermark:
        data = plog.read(offset, 1 << 20)
        if data.records is None:
            break  # only removed records between here and the high watermark (the test rolled)
        raw = os.pread(data.records.fd, data.records.size, data.records.position)
        pos = 0
        while pos + 61 <= len(raw):
            info = _native.batch_info(raw, pos)
            if pos + info.size > len(raw):
                break
            for r in DefaultRecordBatch(raw[pos: pos + info.size]):
                out.append((r.offset, r.key, r.value))
            offset = info.last_offset + 1
            pos += info.size
    return out


def table(recs: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes, tuple[int, bytes | None]]:
    out = {}
    for offset, key, value in recs:
        out[key] = (offset, value)
    return out


def cleaner(manager: LogManager, **kw: object) -> LogCleaner:
    return LogCleaner(manager, CleanerConfig(**kw))  # type: ignore[arg-type]


def test_latest_record_per_key_survives_with_its_offset(manager):
    plog = manager.create("t", 0, compact_config())
    latest = fill(plog)
    plog.roll()
    end, bytes_before = plog.log_end_offset, sum(s.size for s in plog.segments)
    stats = cleaner(manager).clean_now(plog)
    assert stats is not None and stats.records_removed == KEYS * (VERSIONS - 1)
    assert stats.map_records == KEYS * VERSIONS
    got = records(plog)
    assert [(o, k, v) for o, k, v in got] == sorted((o, k, v) for k, (o, v) in latest.items())
    assert plog.log_end_offset == end and plog.high_watermark == end
    assert sum(s.size for s in plog.segments) < bytes_before / 5
    assert read_offsets(os.path.join(manager.log_dirs[0], CLEANER_OFFSET_CHECKPOINT)) == {("t", 0): end}
    # Appends and reads carry on after the swap; nothing is dirty until new data arrives.
    first = append(plog, [Record(value=b"new", key=b"k1")])
    assert first == end and records(plog)[-1] == (end, b"k1", b"new")
    assert cleaner(manager).clean_now(plog) is None
    # The next pass groups the now small cleaned segments into one (groups fit segment.bytes).
    plog.roll()
    cleaner(manager).clean_now(plog)
    assert len(plog.segments) == 2 and records(plog)[-1] == (end, b"k1", b"new")


def test_small_map_cleans_in_several_passes(manager):
    plog = manager.create("t", 0, compact_config())
    latest = fill(plog)
    plog.roll()
    c = cleaner(manager, dedupe_buffer_size=16 * 40)  # 37 slots, 33 keys per pass
    passes = 0
    while c.clean_now(plog) is not None:
        passes += 1
        assert passes < 50
    assert passes >= 3
    assert table(records(plog)) == latest
    assert len(records(plog)) == KEYS


def test_tombstones_stay_until_their_delete_horizon(manager):
    plog = manager.create("t", 0, compact_config(**{"delete.retention.ms": "1000"}))
    latest = fill(plog, keys=20, versions=3)
    tomb = append(plog, [Record(value=None, key=b"k%d" % k) for k in range(5)])
    plog.roll()
    c = cleaner(manager)
    now = int(time.time() * 1000)
    c.clean_now(plog, now)
    got = table(records(plog))
    assert {k: got[k] for k in (b"k0", b"k4")} == {b"k0": (tomb, None), b"k4": (tomb + 4, None)}
    # Not yet past the horizon: a consumer reading from the start still sees the deletes.
    assert c.clean_now(plog, now + 999) is None
    assert len(table(records(plog))) == 20
    stats = c.clean_now(plog, now + 1000)
    assert stats is not None and stats.records_removed == 5
    expected = {k: v for k, v in latest.items() if int(k[1:]) >= 5}
    assert table(records(plog)) == expected


def test_keyless_records_are_rejected_on_compacted_topics(manager):
    plog = manager.create("t", 0, compact_config())
    for codec in (0, 3):
        with pytest.raises(KafkaError) as err:
            append(plog, [Record(value=b"x", key=b"k"), Record(value=b"y", key=None)], compression=codec)
        assert err.value.code == ErrorCode.INVALID_RECORD
    assert plog.log_end_offset == 0
    plain = manager.create("d", 0, LogConfig())
    append(plain, [Record(value=b"y", key=None)])


def test_active_segment_and_min_compaction_lag_are_left_alone(manager):
    plog = manager.create("t", 0, compact_config(**{"min.compaction.lag.ms": "3600000"}))
    fill(plog, keys=10, versions=20)
    plog.roll()
    assert cleaner(manager).clean_now(plog) is None
    plog.update_config(compact_config())
    fill(plog, keys=10, versions=2)  # the active segment is never cleaned
    active = plog.segments.active
    before = records(plog)
    cleaner(manager).clean_now(plog)
    assert plog.segments.active is active
    tail = [r for r in before if r[0] >= active.base_offset]
    assert records(plog)[-len(tail):] == tail


def test_last_batch_of_a_producer_survives_as_a_header(manager):
    plog = manager.create("t", 0, compact_config())
    append(plog, [Record(value=b"p", key=b"a"), Record(value=b"p", key=b"b")], producer_id=7, producer_epoch=0,
           base_sequence=0)
    append(plog, [Record(value=b"n", key=b"a"), Record(value=b"n", key=b"b")])
    plog.roll()
    cleaner(manager).clean_now(plog)
    assert records(plog) == [(2, b"a", b"n"), (3, b"b", b"n")]
    headers = [info for seg in plog.segments for info, _ in _batches(seg)]
    assert headers[0].producer_id == 7 and headers[0].records_count == 0 and headers[0].last_offset == 1
    # The producer's next sequence is still in order, also after the state is rebuilt from the log.
    append(plog, [Record(value=b"q", key=b"a")], producer_id=7, producer_epoch=0, base_sequence=2)
    path = plog.directory
    plog.close()
    # Appended at broker time 0 below: let the batch's real timestamp be "after" it.
    reopened = PartitionLog.load(path, "t", 0, compact_config(**{"message.timestamp.after.max.ms": str(2**63 - 1)}),
                                 io=shared_io(), had_clean_shutdown=False)
    try:
        reopened.append(memoryview(bytearray(build_batch([Record(value=b"r", key=b"a")], producer_id=7,
                                                         producer_epoch=0, base_sequence=3))),
                        int(time.time() * 1000))
    finally:
        reopened.close()


def _batches(segment):
    raw = os.pread(segment.fd, segment.size, 0)
    pos = 0
    while pos < len(raw):
        info = _native.batch_info(raw, pos)
        yield info, raw[pos: pos + info.size]
        pos += info.size


@pytest.mark.parametrize("step", ["cleaned", "swap", "delete", "live"])
def test_swap_interrupted_at_each_step_recovers(manager, monkeypatch, step):
    plog = manager.create("t", 0, compact_config())
    latest = fill(plog)
    plog.roll()
    before = records(plog)

    crash_cleaner_at(monkeypatch, step)
    with pytest.raises(CleanerCrash):
        cleaner(manager).clean_now(plog)
    # As after a kill -9: the in-memory log is gone, the directory is what the crash left.
    path = plog.directory
    manager.logs.clear()
    recovered = PartitionLog.load(path, "t", 0, compact_config(), io=shared_io(), recovery_point=0, had_clean_shutdown=False)
    try:
        assert not [n for n in os.listdir(path) if n.endswith((".cleaned", ".swap"))]
        got = records(recovered)
        offsets = [o for o, _, _ in got]
        assert offsets == sorted(set(offsets))
        assert table(got) == latest  # every key's latest value, at its offset
        if step == "cleaned":
            assert got == before  # rolled back: nothing was swapped
        else:
            # The first group was swapped in: its superseded records are gone.
            assert len(got) < len(before)
        assert recovered.log_end_offset == plog.log_end_offset
    finally:
        recovered.close()
