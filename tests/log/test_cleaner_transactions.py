"""LogCleaner on transactional logs (real PartitionLog + LogCleaner, no broker): records of
aborted transactions never supersede committed ones and are removed, the cleaned segment keeps
the .txnindex entries of the ABORT markers it keeps, markers go after their delete horizon once
their transaction's records are gone, an open transaction above the LSO is untouched, and all
of it survives a restart and an interrupted swap.

The reference for "what a read_committed consumer sees" is `committed_table`, which reads the
log through PartitionLog.read(READ_COMMITTED) and drops aborted batches the way the Java
consumer does (Fetcher: aborted transactions from the response, dropped until their marker).
"""

from __future__ import annotations

import os
import random
import time

import pytest

from pyk import _native
from pyk.log.cleaner import CleanerConfig, LogCleaner
from pyk.log.config import LogConfig
from pyk.log.control import read_marker
from pyk.log.manager import LogManager
from pyk.log.partition_log import READ_COMMITTED, PartitionLog
from pyk.log.txn_index import AbortedTxn
from tests.log.conftest import CleanerCrash, crash_cleaner_at, shared_io
from tests.log.conftest import compact_config as base_compact_config
from tests.ref.builder import Record, build_batch

Table = dict[bytes, bytes | None]


def compact_config(**overrides: str) -> LogConfig:
    return base_compact_config(**{"segment.bytes": "2048", "delete.retention.ms": "86400000", **overrides})


def now_ms() -> int:
    return int(time.time() * 1000)


def write(plog: PartitionLog, kvs: list[tuple[bytes, bytes | None]], **kw: object) -> int:
    now = now_ms()
    recs = [Record(value=v, key=k, timestamp=now) for k, v in kvs]
    return plog.append(memoryview(build_batch(recs, base_timestamp=now, **kw)), now).first_offset  # type: ignore[arg-type]


class Producer:
    """A transactional producer of one partition: sequence numbers and markers."""

    def __init__(self, plog: PartitionLog, pid: int, epoch: int = 0) -> None:
        self.plog, self.pid, self.epoch, self.seq = plog, pid, epoch, 0

    def send(self, kvs: list[tuple[bytes, bytes | None]]) -> int:
        first = write(self.plog, kvs, producer_id=self.pid, producer_epoch=self.epoch, base_sequence=self.seq,
                      transactional=True)
        self.seq += len(kvs)
        return first

    def end(self, commit: bool) -> int:
        return self.plog.append_control(self.pid, self.epoch, commit, 0, now_ms())


def batches(plog: PartitionLog) -> list[tuple[object, bytes]]:
    """(header, bytes) of every batch in the log's files, in offset order."""
    out = []
    for segment in plog.segments:
        raw = os.pread(segment.fd, segment.size, 0)
        pos = 0
        while pos < len(raw):
            info = _native.batch_info(raw, pos)
            out.append((info, raw[pos: pos + info.size]))
            pos += info.size
    return out


def decode(raw: bytes) -> list[tuple[int, bytes | None, bytes | None]]:
    from kafka.record.default_records import DefaultRecordBatch

    return [(r.offset, r.key, r.value) for r in DefaultRecordBatch(raw)]


def committed_table(plog: PartitionLog, max_bytes: int = 1 << 20) -> Table:
    """key -> latest value a read_committed consumer builds reading from the log start
    (tombstones delete), fetching `max_bytes` at a time up to the last stable offset."""
    table: Table = {}
    offset = plog.log_start_offset
    while offset < plog.last_stable_offset:
        data = plog.read(offset, max_bytes, isolation_level=READ_COMMITTED)
        if data.records is None:
            break
        raw = os.pread(data.records.fd, data.records.size, data.records.position)
        aborted = sorted(data.aborted_transactions or [], key=lambda t: t[1])
        aborting: set[int] = set()
        pos = 0
        while pos + 61 <= len(raw):
            info = _native.batch_info(raw, pos)
            if pos + info.size > len(raw):
                break
            one = raw[pos: pos + info.size]
            pos += info.size
            offset = info.last_offset + 1
            while aborted and aborted[0][1] <= info.last_offset:
                aborting.add(aborted.pop(0)[0])
            if info.is_control:
                commit, _ = read_marker(one)
                if not commit:
                    aborting.discard(info.producer_id)
                continue
            if info.is_transactional and info.producer_id in aborting:
                continue
            for _, key, value in decode(one):
                assert key is not None
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
    return table


def all_records(plog: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    return [r for info, raw in batches(plog) if not info.is_control for r in decode(raw)]  # type: ignore[attr-defined]


def aborted_record_offsets(plog: PartitionLog) -> set[int]:
    """Offsets of the records of aborted transactions still in the files."""
    entries = [e for s in plog.segments for e in s.txn_index.entries]
    out = set()
    for info, raw in batches(plog):
        if info.is_transactional and not info.is_control and any(  # type: ignore[attr-defined]
                e.producer_id == info.producer_id and e.first_offset <= info.base_offset < e.last_offset  # type: ignore[attr-defined]
                for e in entries):
            out.update(r[0] for r in decode(raw))
    return out


def cleaner(manager: LogManager) -> LogCleaner:
    return LogCleaner(manager, CleanerConfig())


def test_aborted_value_does_not_supersede_the_committed_one(manager):
    plog = manager.create("t", 0, compact_config())
    a, b = Producer(plog, 1), Producer(plog, 2)
    v1 = a.send([(b"K", b"v1"), (b"L", b"l1")])
    a.end(commit=True)
    v2 = b.send([(b"K", b"v2")])
    b.send([(b"L", b"l2"), (b"M", b"m2")])
    b.end(commit=False)
    plog.roll()
    assert committed_table(plog) == {b"K": b"v1", b"L": b"l1"}
    stats = cleaner(manager).clean_now(plog)
    assert stats is not None and stats.aborted_records_removed == 3
    got = all_records(plog)
    assert (v1, b"K", b"v1") in got and (v1 + 1, b"L", b"l1") in got
    assert not [r for r in got if r[0] >= v2]  # the aborted records are gone from the files too
    assert committed_table(plog) == {b"K": b"v1", b"L": b"l1"}
    # b's last batch stays as an empty header (its sequence state), so its marker stays too.
    kept = [(info.base_offset, info.records_count, info.is_control) for info, _ in batches(plog)]
    assert (v2 + 1, 0, False) in kept and kept[-1][2]


def test_cleaned_segment_keeps_the_index_entries_of_surviving_abort_markers(manager):
    plog = manager.create("t", 0, compact_config(**{"segment.bytes": "700"}))
    entries = []
    for i in range(12):
        p = Producer(plog, 100 + i)
        p.send([(b"k%d" % (i % 4), b"x%d" % i)])
        p.send([(b"j%d" % (i % 3), b"y%d" % i)])
        write(plog, [(b"plain%d" % (i % 5), b"p%d" % i)])
        p.end(commit=i % 3 != 0)
        if i % 3 == 0:
            entries.append(plog.segments.active.txn_index.entries[-1])
    plog.roll()
    assert len(plog.segments) > 4
    expected = committed_table(plog)
    aborted_before = plog.aborted_transactions(0, plog.log_end_offset)
    plog.update_config(compact_config(**{"segment.bytes": "2500"}))  # groups of several old segments
    cleaner(manager).clean_now(plog)
    cleaned = [s for s in plog.segments if s is not plog.segments.active]
    assert len(cleaned) < 4, "old segments were merged, their entries with them"
    # Every ABORT marker is still there (delete.retention.ms is a day), with its entry, in the
    # .txnindex of the segment now holding it, verbatim.
    markers = [info.base_offset for info, raw in batches(plog) if info.is_control and not read_marker(raw)[0]]
    assert markers == [e.last_offset for e in entries]
    assert [e for s in cleaned for e in s.txn_index.entries] == entries
    for s in cleaned:
        assert all(s.base_offset <= e.last_offset < s.next_offset for e in s.txn_index.entries)
        assert os.path.exists(s.txn_index.path) == bool(s.txn_index.entries)
    assert plog.aborted_transactions(0, plog.log_end_offset) == aborted_before
    assert not [n for n in os.listdir(plog.directory) if n.endswith((".cleaned", ".swap"))]
    assert committed_table(plog) == expected
    assert committed_table(plog, max_bytes=100) == expected  # one batch per fetch
    data = plog.read(entries[0].first_offset, 1 << 20, isolation_level=READ_COMMITTED)
    assert (entries[0].producer_id, entries[0].first_offset) in data.aborted_transactions


def test_markers_go_after_their_delete_horizon_once_their_records_are_gone(manager):
    plog = manager.create("t", 0, compact_config(**{"delete.retention.ms": "1000"}))
    a, b = Producer(plog, 1), Producer(plog, 2)
    a.send([(b"K", b"a1")])
    a.end(commit=True)              # 1: its record is superseded below
    b.send([(b"K", b"b1")])
    b.end(commit=False)             # 3: aborted, b's batch at 2 is b's last: kept empty
    a.send([(b"K", b"a2")])
    a.end(commit=True)              # 5: its record is the latest K, kept
    b.send([(b"L", b"b2")])         # b moves on: its batch at 2 is no longer its last
    b.end(commit=False)             # 7
    write(plog, [(b"M", b"m")])
    plog.roll()
    c = cleaner(manager)
    now = now_ms()
    c.clean_now(plog, now)
    controls = {info.base_offset: info for info, _ in batches(plog) if info.is_control}
    assert sorted(controls) == [1, 3, 5, 7]
    # Markers whose transaction has nothing left in the log get a delete horizon; the others not.
    stamped = {o for o, info in controls.items() if info.attributes & 0x40}
    assert stamped == {1, 3}
    assert all(info.max_timestamp <= now for info in controls.values())
    assert committed_table(plog) == {b"K": b"a2", b"M": b"m"}
    assert [e.last_offset for s in plog.segments for e in s.txn_index.entries] == [3, 7]
    assert c.clean_now(plog, now + 500) is None  # horizon not reached: nothing to do
    stats = c.clean_now(plog, now + 1000)
    assert stats is not None and stats.markers_removed == 2
    controls = {info.base_offset for info, _ in batches(plog) if info.is_control}
    assert controls == {5, 7}
    assert [e.last_offset for s in plog.segments for e in s.txn_index.entries] == [7]
    assert committed_table(plog) == {b"K": b"a2", b"M": b"m"}
    # Restart, rebuilding the producer state from the log alone: no transaction reopens.
    path = plog.directory
    manager.logs.clear()
    plog.close()
    for name in os.listdir(path):
        if name.endswith(".snapshot"):
            os.unlink(os.path.join(path, name))
    reopened = PartitionLog.load(path, "t", 0, compact_config(), io=shared_io(), recovery_point=0, had_clean_shutdown=False)
    try:
        assert reopened.last_stable_offset == reopened.high_watermark == reopened.log_end_offset
        assert committed_table(reopened) == {b"K": b"a2", b"M": b"m"}
    finally:
        reopened.close()


def test_interleaved_producers_and_an_open_transaction_above_the_lso(manager):
    plog = manager.create("t", 0, compact_config())
    a, b, c = Producer(plog, 1), Producer(plog, 2), Producer(plog, 3)
    write(plog, [(b"K", b"plain0"), (b"L", b"plain0")])
    a.send([(b"K", b"a1")])
    b.send([(b"K", b"b1"), (b"L", b"b1")])
    a.send([(b"L", b"a1")])
    b.send([(b"M", b"b1")])
    a.end(commit=True)
    write(plog, [(b"N", b"plain1")])
    b.end(commit=False)
    open_first = c.send([(b"K", b"c1")])   # open: the LSO stays here
    write(plog, [(b"L", b"plain2")])
    plog.roll()
    assert plog.last_stable_offset == open_first
    expected = {b"K": b"a1", b"L": b"a1", b"N": b"plain1"}
    assert committed_table(plog) == expected
    before_open = [r for r in all_records(plog) if r[0] >= open_first]
    cleaner(manager).clean_now(plog)
    # Nothing at or past the LSO changed; below it the committed table is what it was.
    assert [r for r in all_records(plog) if r[0] >= open_first] == before_open
    assert committed_table(plog) == expected
    got = all_records(plog)
    assert not [r for r in got if r[2] == b"b1"]
    # The open transaction aborts: the log still has every committed value it shadowed.
    c.end(commit=False)
    plog.roll()
    cleaner(manager).clean_now(plog)
    assert committed_table(plog) == {b"K": b"a1", b"L": b"plain2", b"N": b"plain1"}
    assert not [r for r in all_records(plog) if r[2] == b"c1"]


def test_open_transaction_commits_after_a_pass(manager):
    plog = manager.create("t", 0, compact_config())
    a, c = Producer(plog, 1), Producer(plog, 3)
    a.send([(b"K", b"a1")])
    a.end(commit=True)
    c.send([(b"K", b"c1")])
    plog.roll()
    cleaner(manager).clean_now(plog)
    assert committed_table(plog) == {b"K": b"a1"}
    c.end(commit=True)
    plog.roll()
    cleaner(manager).clean_now(plog)
    assert committed_table(plog) == {b"K": b"c1"}
    assert [r[2] for r in all_records(plog)] == [b"c1"]


def _random_workload(plog: PartitionLog, rng: random.Random, ops: int, producers: list[Producer],
                     open_txn: dict[int, bool]) -> None:
    keys = [b"k%d" % i for i in range(12)]
    for _ in range(ops):
        roll = rng.random()
        if roll < 0.15:
            write(plog, [(rng.choice(keys), rng.choice([b"plain%d" % rng.randrange(99), None]))])
        elif roll < 0.75:
            p = rng.choice(producers)
            n = rng.randrange(1, 4)
            p.send([(rng.choice(keys), rng.choice([b"%d-%d" % (p.pid, rng.randrange(99)), None]))
                    for _ in range(n)])
            open_txn[p.pid] = True
        else:
            p = rng.choice(producers)
            if open_txn[p.pid]:
                p.end(commit=rng.random() < 0.5)
                open_txn[p.pid] = False


@pytest.mark.parametrize("map_bytes", [128 * 1024 * 1024, 160])
@pytest.mark.parametrize("seed", range(12))
def test_random_transactions_read_committed_table_survives_cleaning_and_restart(manager, seed, map_bytes):
    """A random workload of four transactional producers and plain writes; after every round
    of passes (a 160-byte map holds 9 keys, so those passes stop early and leave part of the
    rewritten segments past the map) a read_committed reader sees the same table."""
    rng = random.Random(seed)
    plog = manager.create("t", 0, compact_config(**{"segment.bytes": "900", "delete.retention.ms": "1000"}))
    c = LogCleaner(manager, CleanerConfig(dedupe_buffer_size=map_bytes))
    now = now_ms()
    producers = [Producer(plog, 10 + i) for i in range(4)]
    open_txn = {p.pid: False for p in producers}
    for round_ in range(4):
        _random_workload(plog, rng, 40, producers, open_txn)
        plog.roll()
        expected = committed_table(plog)
        # At and past the LSO only records of transactions already aborted may go.
        tail = [r for r in all_records(plog) if r[0] >= plog.last_stable_offset]
        aborted = aborted_record_offsets(plog)
        must_stay = [r for r in tail if r[0] not in aborted]
        # Passes at "now", then past the tombstone and marker horizons.
        c.clean_now(plog, now + round_ * 2000)
        c.clean_now(plog, now + round_ * 2000 + 1500)
        assert committed_table(plog) == expected, round_
        assert committed_table(plog, max_bytes=150) == expected, round_
        after = [r for r in all_records(plog) if r[0] >= plog.last_stable_offset]
        assert set(must_stay) <= set(after) <= set(tail)
        for s in plog.segments:
            assert all(s.base_offset <= e.last_offset < s.next_offset for e in s.txn_index.entries)
    lso, end = plog.last_stable_offset, plog.log_end_offset
    entries = [e for s in plog.segments for e in s.txn_index.entries]
    path = plog.directory
    manager.logs.clear()
    plog.close()
    for clean_shutdown in (True, False):
        reopened = PartitionLog.load(path, "t", 0, compact_config(), io=shared_io(), recovery_point=0 if not clean_shutdown else end,
                                     had_clean_shutdown=clean_shutdown)
        try:
            assert (reopened.last_stable_offset, reopened.log_end_offset) == (lso, end)
            assert committed_table(reopened) == expected
            if clean_shutdown:
                assert [e for s in reopened.segments for e in s.txn_index.entries] == entries
        finally:
            reopened.close()


@pytest.mark.parametrize("step", ["cleaned", "swap", "delete", "live"])
def test_swap_with_a_txn_index_interrupted_at_each_step(manager, monkeypatch, step):
    """A kill during the swap of a cleaned segment that carries a .txnindex: the restart (even a
    clean-shutdown one, which trusts the .txnindex files) finds either the old segments with their
    entries or the new one with its own, never a stale index."""
    plog = manager.create("t", 0, compact_config(**{"segment.bytes": "700"}))
    pids = []
    for i in range(10):
        p = Producer(plog, 50 + i)
        p.send([(b"k%d" % (i % 3), b"x%d" % i), (b"j", b"y%d" % i)])
        write(plog, [(b"plain", b"p%d" % i)])
        p.end(commit=i % 2 == 0)
        pids.append(p.pid)
    plog.roll()
    expected = committed_table(plog)
    entries = [e for s in plog.segments for e in s.txn_index.entries]
    assert len({e.last_offset // 1 for e in entries}) == 5

    crash_cleaner_at(monkeypatch, step)
    with pytest.raises(CleanerCrash):
        cleaner(manager).clean_now(plog)
    path, end = plog.directory, plog.log_end_offset
    manager.logs.clear()
    for clean_shutdown in (True, False):
        recovered = PartitionLog.load(path, "t", 0, compact_config(), io=shared_io(), recovery_point=end if clean_shutdown else 0,
                                      had_clean_shutdown=clean_shutdown)
        try:
            assert not [n for n in os.listdir(path) if n.endswith((".cleaned", ".swap"))]
            assert committed_table(recovered) == expected
            assert recovered.log_end_offset == end and recovered.last_stable_offset == end
            got = [e for s in recovered.segments for e in s.txn_index.entries]
            markers = {info.base_offset for info, raw in batches(recovered)
                       if info.is_control and not read_marker(raw)[0]}
            # Every entry names an ABORT marker present in its own segment.
            for s in recovered.segments:
                for e in s.txn_index.entries:
                    assert e.last_offset in markers and s.base_offset <= e.last_offset < s.next_offset
            if clean_shutdown:
                assert got == entries  # markers all kept (a day's horizon): every entry kept
        finally:
            recovered.close()


def test_txn_index_entries_are_verbatim(manager):
    """The cleaned entries keep the first offset and the LSO recorded when the marker was written."""
    plog = manager.create("t", 0, compact_config())
    a, b = Producer(plog, 1), Producer(plog, 2)
    a.send([(b"K", b"a")])          # 0
    b.send([(b"L", b"b")])          # 1: b open, so a's abort records LSO 1
    a.end(commit=False)             # 2
    b.end(commit=True)              # 3
    plog.roll()
    assert plog.segments.first.txn_index.entries == [AbortedTxn(1, 0, 2, 1)]
    cleaner(manager).clean_now(plog)
    assert plog.segments.first.txn_index.entries == [AbortedTxn(1, 0, 2, 1)]
    assert committed_table(plog) == {b"L": b"b"}


def test_empty_headers_go_once_their_producer_moved_on_and_then_the_markers(manager):
    plog = manager.create("t", 0, compact_config(**{"delete.retention.ms": "1000"}))
    a = Producer(plog, 1)
    a.send([(b"K", b"a1")])
    a.end(commit=True)              # 1
    write(plog, [(b"K", b"plain")])  # 2: supersedes a's record; a's batch at 0 is a's last
    plog.roll()
    c = cleaner(manager)
    now = now_ms()
    c.clean_now(plog, now)
    # a's batch stays as an empty header (its sequence state), so its marker stays unstamped.
    got = [(info.base_offset, info.records_count, info.attributes & 0x40) for info, _ in batches(plog)]
    assert got == [(0, 0, 0), (1, 1, 0), (2, 1, 0)]
    a.send([(b"L", b"a2")])          # 3: a moves on
    a.end(commit=True)              # 4
    plog.roll()
    c.clean_now(plog, now)
    got = [(info.base_offset, info.records_count, info.attributes & 0x40) for info, _ in batches(plog)]
    assert got == [(1, 1, 0x40), (2, 1, 0), (3, 1, 0), (4, 1, 0)]
    c.clean_now(plog, now + 1000)
    assert [info.base_offset for info, _ in batches(plog)] == [2, 3, 4]
    assert committed_table(plog) == {b"K": b"plain", b"L": b"a2"}
    assert a.send([(b"M", b"a3")]) == 5  # a's sequence state is intact


def test_a_marker_that_bumped_its_producers_epoch_stays(manager):
    """A coordinator abort with a bumped epoch (a timed-out transaction) leaves the producer with
    no batch of the new epoch: that marker is the log's record of the epoch (Kafka keeps it for
    fencing), so it stays while the markers before it go."""
    plog = manager.create("t", 0, compact_config(**{"delete.retention.ms": "1000"}))
    a = Producer(plog, 5)
    a.send([(b"K", b"a1")])
    a.end(commit=True)                                    # 1, epoch 0
    a.send([(b"K", b"a2")])                               # 2
    plog.append_control(5, 1, False, 0, now_ms())          # 3: aborted with epoch 1
    write(plog, [(b"K", b"plain")])                       # 4
    plog.roll()
    c = cleaner(manager)
    now = now_ms()
    c.clean_now(plog, now)
    c.clean_now(plog, now + 1000)
    got = [(info.base_offset, info.is_control, info.producer_epoch) for info, _ in batches(plog)]
    assert got == [(3, True, 1), (4, False, -1)]
    assert committed_table(plog) == {b"K": b"plain"}
    assert plog.aborted_transactions(0, 5) == [(5, 2)]


def test_swap_waits_for_the_flush_of_rolled_segments(manager, monkeypatch):
    """The background flush of rolled segments and a cleaner swap of those segments do not race
    (the swap unmapped indexes the flusher thread was still syncing: "mmap closed or invalid")."""
    import threading

    import pyk.log.partition_log as partition_log_module

    release = threading.Event()
    real = partition_log_module._flush_rolled

    def slow_flush(segments, snapshots, directory):
        release.wait(10)
        real(segments, snapshots, directory)

    monkeypatch.setattr(partition_log_module, "_flush_rolled", slow_flush)
    plog = manager.create("t", 0, compact_config())
    p = Producer(plog, 1)
    for i in range(30):
        p.send([(b"k%d" % (i % 3), b"v%d" % i)])
        p.end(commit=i % 2 == 0)
    plog.roll()
    expected = committed_table(plog)
    now = now_ms()
    plog.flush_if_due(now)
    plog.flush_if_due(now)
    assert plog.roll_flush is not None and not plog.roll_flush.done()
    old = [s for s in plog.segments if s is not plog.segments.active]
    assert plog.replace_segments(old[0].base_offset, old[:1]) is False  # refused while flushing
    threading.Timer(0.3, release.set).start()
    stats = cleaner(manager).clean_now(plog)  # waits for the flush, then swaps
    assert stats is not None and plog.roll_flush is not None and plog.roll_flush.done()
    plog.flush_if_due(now_ms())  # the flush's outcome surfaces without error
    assert committed_table(plog) == expected
