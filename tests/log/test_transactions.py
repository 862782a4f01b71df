"""Transactions on the partition log: transactional appends, markers, LSO, .txnindex, recovery."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyk.errors import ErrorCode, KafkaError
from pyk.log.control import read_marker
from pyk.log.partition_log import READ_COMMITTED, PartitionLog
from pyk.log.txn_index import ENTRY_SIZE, AbortedTxn, TransactionIndex
from tests.log.conftest import BASE_TS, batch, open_log, read_all, small_config
from tests.ref.batch import batch_info

NOW = BASE_TS


class Producer:
    """A transactional producer's sequence bookkeeping for one partition."""

    def __init__(self, plog: PartitionLog, pid: int, epoch: int = 0) -> None:
        self.plog, self.pid, self.epoch, self.seq = plog, pid, epoch, 0

    def send(self, n: int = 2, transactional: bool = True) -> tuple[int, int]:
        info = self.plog.append(batch(n, producer_id=self.pid, producer_epoch=self.epoch, base_sequence=self.seq,
                                      transactional=transactional), NOW)
        self.seq += n
        return info.first_offset, info.last_offset

    def end(self, commit: bool, coordinator_epoch: int = 0) -> int:
        return self.plog.append_control(self.pid, self.epoch, commit, coordinator_epoch, NOW)


def plain(plog: PartitionLog, n: int = 1) -> tuple[int, int]:
    info = plog.append(batch(n), NOW)
    return info.first_offset, info.last_offset


def txn_files(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".txnindex"))


def test_commit_moves_lso_and_writes_a_marker(log_dir: str) -> None:
    plog = open_log(log_dir)
    plain(plog, 3)
    a = Producer(plog, 7)
    assert a.send(2) == (3, 4)
    assert plog.last_stable_offset == 3 and plog.high_watermark == 5
    assert a.send(1) == (5, 5)
    assert plog.last_stable_offset == 3
    marker = a.end(commit=True, coordinator_epoch=4)
    assert marker == 6
    assert plog.last_stable_offset == plog.high_watermark == plog.log_end_offset == 7
    # The marker batch: control + transactional, one record, producer fields, COMMIT, epoch 4.
    data = plog.read(6, 1 << 20)
    raw = os.pread(data.records.fd, data.records.size, data.records.position)
    info = batch_info(raw)
    assert (info.base_offset, info.last_offset, info.is_control, info.is_transactional) == (6, 6, True, True)
    assert (info.producer_id, info.producer_epoch, info.base_sequence, info.records_count) == (7, 0, -1, 1)
    assert read_marker(raw) == (True, 4)
    assert txn_files(log_dir) == []  # commits are not indexed; no empty .txnindex files
    plog.close()


def test_abort_is_indexed_and_reported(log_dir: str) -> None:
    plog = open_log(log_dir)
    a = Producer(plog, 7)
    a.send(2)
    a.send(2)
    assert a.end(commit=False) == 4
    assert plog.last_stable_offset == 5
    assert plog.aborted_transactions(0, 5) == [(7, 0)]
    seg = plog.segments.active
    assert seg.txn_index.entries == [AbortedTxn(7, 0, 4, 5)]
    assert os.path.getsize(seg.txn_index.path) == ENTRY_SIZE
    data = plog.read(0, 1 << 20, isolation_level=READ_COMMITTED)
    assert data.aborted_transactions == [(7, 0)] and data.last_stable_offset == 5
    assert plog.read(0, 1 << 20).aborted_transactions is None  # read_uncommitted: null
    plog.close()


def test_lso_with_interleaved_producers(log_dir: str) -> None:
    plog = open_log(log_dir)
    a, b = Producer(plog, 1), Producer(plog, 2)
    a.send(2)              # 0-1
    plain(plog)            # 2
    b.send(2)              # 3-4
    a.send(1)              # 5
    assert plog.last_stable_offset == 0
    assert a.end(commit=False) == 6
    assert plog.last_stable_offset == 3  # b is still open
    assert plog.segments.active.txn_index.entries[-1] == AbortedTxn(1, 0, 6, 3)
    plain(plog)            # 7
    assert plog.last_stable_offset == 3
    assert b.end(commit=True) == 8
    assert plog.last_stable_offset == plog.high_watermark == 9
    # b's commit is not indexed; a's abort, ending at 6 with LSO 3, is.
    assert plog.aborted_transactions(0, 9) == [(1, 0)]
    assert plog.aborted_transactions(7, 9) == []
    plog.close()


def test_aborted_transactions_ranges(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "600"}))
    spans = []
    for i in range(12):
        p = Producer(plog, 100 + i)
        first, _ = p.send(2)
        p.send(1)
        plain(plog)
        marker = p.end(commit=i % 3 != 0)
        spans.append((100 + i, first, marker, i % 3 != 0))
    assert len(plog.segments) > 3, "small segments: aborted transactions spread over several .txnindex files"
    assert len(txn_files(log_dir)) >= 2
    end = plog.log_end_offset
    aborted = [(pid, first, marker) for pid, first, marker, commit in spans if not commit]
    for start in range(0, end, 3):
        for upper in range(start + 1, end + 1, 4):
            expected = [(pid, first) for pid, first, marker in aborted if marker >= start and first < upper]
            assert plog.aborted_transactions(start, upper) == expected, (start, upper)
    plog.close()


def test_transaction_spanning_segments_found_from_its_start(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "400"}))
    a = Producer(plog, 9)
    first, _ = a.send(2)
    for _ in range(10):
        plain(plog, 2)
    a.send(1)
    marker = a.end(commit=False)
    assert plog.segments.floor(first) is not plog.segments.floor(marker)
    # The entry lives with the marker, segments later; a fetch from the start still finds it.
    assert plog.aborted_transactions(first, first + 1) == [(9, first)]
    data = plog.read(first, 100, isolation_level=READ_COMMITTED)
    assert data.aborted_transactions == [(9, first)]
    plog.close()


def test_read_committed_stops_at_lso(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "100000"}))
    plain(plog, 2)          # 0-1
    a = Producer(plog, 3)
    a.send(2)               # 2-3
    plain(plog, 2)          # 4-5
    data = plog.read(0, 1 << 20, isolation_level=READ_COMMITTED)
    raw = os.pread(data.records.fd, data.records.size, data.records.position)
    assert batch_info(raw).last_offset == 1 and data.records.size == batch_info(raw).size
    assert data.last_stable_offset == 2 and data.high_watermark == 6
    assert data.aborted_transactions == []
    assert plog.read(2, 1 << 20, isolation_level=READ_COMMITTED).records is None
    assert plog.read(0, 1 << 20).records.size > data.records.size  # read_uncommitted sees all
    a.end(commit=True)
    assert read_all(plog) == [(0, 1), (2, 3), (4, 5), (6, 6)]
    data = plog.read(2, 1 << 20, isolation_level=READ_COMMITTED)
    assert data.records is not None and data.last_stable_offset == 7
    plog.close()


def test_stable_advance_hook_counts_bytes(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "100000"}))
    calls: list[int] = []
    plog.on_stable_advance = lambda _log, nbytes: calls.append(nbytes)
    plain(plog)
    assert calls == [plog.segments.active.size]
    a = Producer(plog, 3)
    before = plog.segments.active.size
    a.send(2)
    plain(plog)
    assert len(calls) == 1  # nothing became stable inside the open transaction
    a.end(commit=True)
    assert calls[1] == plog.segments.active.size - before  # the transaction, the plain batch, the marker
    plog.close()


def test_fencing_and_state_errors(log_dir: str) -> None:
    plog = open_log(log_dir)
    a = Producer(plog, 5, epoch=3)
    a.send(1)
    with pytest.raises(KafkaError) as err:  # non-transactional batch inside the open transaction
        a.send(1, transactional=False)
    assert err.value.code == ErrorCode.INVALID_TXN_STATE
    old = Producer(plog, 5, epoch=2)
    with pytest.raises(KafkaError) as err:
        old.send(1)
    assert err.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    with pytest.raises(KafkaError) as err:
        old.end(commit=True)
    assert err.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    a.end(commit=True, coordinator_epoch=7)
    end = plog.log_end_offset
    with pytest.raises(KafkaError) as err:
        a.end(commit=False, coordinator_epoch=6)
    assert err.value.code == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    assert plog.log_end_offset == end  # nothing written by a rejected marker
    with pytest.raises(KafkaError) as err:
        plog.append(batch(1, transactional=True), NOW)
    assert err.value.code == ErrorCode.INVALID_RECORD
    plog.close()


def test_marker_without_open_transaction_and_epoch_bump(log_dir: str) -> None:
    plog = open_log(log_dir)
    plain(plog)
    # A marker for a producer with nothing open is written (the coordinator may retry) but
    # ends nothing and indexes nothing.
    assert plog.append_control(8, 0, False, 0, NOW) == 1
    assert plog.last_stable_offset == 2 and txn_files(log_dir) == []
    a = Producer(plog, 8, epoch=0)
    a.send(2)
    # A marker with a newer epoch (the coordinator bumped it on abort) ends the transaction and
    # becomes the producer's epoch: its sequences restart at 0.
    plog.append_control(8, 1, False, 0, NOW)
    assert plog.last_stable_offset == plog.high_watermark
    a.epoch, a.seq = 1, 0
    a.send(1)
    with pytest.raises(KafkaError) as err:
        Producer(plog, 8, epoch=0).send(1)
    assert err.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    plog.close()


def test_epoch_bump_keeps_the_open_transaction(log_dir: str) -> None:
    plog = open_log(log_dir)
    a = Producer(plog, 4, epoch=0)
    first, _ = a.send(2)
    a.epoch, a.seq = 1, 0
    a.send(1)  # Kafka: a transactional batch of a newer epoch joins the open transaction
    assert plog.last_stable_offset == first
    a.end(commit=False)
    assert plog.aborted_transactions(0, plog.log_end_offset) == [(4, first)]
    plog.close()


def test_duplicate_transactional_batch(log_dir: str) -> None:
    plog = open_log(log_dir)
    plain(plog)
    raw = bytes(batch(2, producer_id=6, producer_epoch=0, base_sequence=0, transactional=True))
    first = plog.append(memoryview(bytearray(raw)), NOW)
    again = plog.append(memoryview(bytearray(raw)), NOW)
    assert again.duplicate and (again.first_offset, again.last_offset) == (first.first_offset, first.last_offset)
    assert plog.last_stable_offset == 1 and plog.log_end_offset == 3
    plog.close()


def test_restart_with_open_and_aborted_transactions(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "700"}))
    a, b = Producer(plog, 1), Producer(plog, 2)
    a.send(2)
    for _ in range(6):
        plain(plog)
    a.end(commit=False)
    b.send(2)
    plain(plog)
    lso, end = plog.last_stable_offset, plog.log_end_offset
    aborted = plog.aborted_transactions(0, end)
    assert lso == b.plog.segments.active.next_offset - 3 and aborted == [(1, 0)]
    plog.close()
    # Clean restart: producer snapshot at the log end carries b's open transaction.
    plog = open_log(log_dir, small_config(**{"segment.bytes": "700"}), had_clean_shutdown=True)
    assert (plog.last_stable_offset, plog.log_end_offset) == (lso, end)
    assert plog.aborted_transactions(0, end) == aborted
    b.plog = plog
    b.send(1)  # sequences continue across the restart
    assert b.end(commit=False) == end + 1
    assert plog.last_stable_offset == plog.log_end_offset
    assert plog.aborted_transactions(0, plog.log_end_offset) == [(1, 0), (2, lso)]
    plog.close()


def test_unclean_restart_rebuilds_txn_index_and_lso(log_dir: str) -> None:
    config = small_config(**{"segment.bytes": "700"})
    plog = open_log(log_dir, config)
    producers = [Producer(plog, 10 + i) for i in range(4)]
    for p in producers:
        p.send(2)
        plain(plog)
    producers[0].end(commit=False)
    producers[1].end(commit=True)
    producers[2].end(commit=False)
    # producers[3] stays open
    lso, end = plog.last_stable_offset, plog.log_end_offset
    aborted = plog.aborted_transactions(0, end)
    entries = [list(s.txn_index.entries) for s in plog.segments]
    assert len(aborted) == 2 and lso < end
    # A crash: no close (so no snapshot at the log end), recovery from the start; the
    # .txnindex files are deleted as well, to show they are rebuilt from the markers.
    for name in txn_files(log_dir):
        os.unlink(os.path.join(log_dir, name))
    again = open_log(log_dir, config, had_clean_shutdown=False, recovery_point=0)
    assert (again.last_stable_offset, again.log_end_offset) == (lso, end)
    assert again.aborted_transactions(0, end) == aborted
    assert [list(s.txn_index.entries) for s in again.segments] == entries
    again.close()
    plog.release_files()


def test_corrupt_txn_index_is_rebuilt(log_dir: str) -> None:
    plog = open_log(log_dir)
    a = Producer(plog, 1)
    a.send(1)
    a.end(commit=False)
    plain(plog)
    plog.close()
    (name,) = txn_files(log_dir)
    with open(os.path.join(log_dir, name), "ab") as fh:
        fh.write(b"\x00" * 5)  # not a whole entry
    plog = open_log(log_dir, had_clean_shutdown=True)
    assert plog.aborted_transactions(0, plog.log_end_offset) == [(1, 0)]
    assert os.path.getsize(os.path.join(log_dir, name)) == ENTRY_SIZE
    plog.close()


def test_truncate_reopens_the_transaction(log_dir: str) -> None:
    plog = open_log(log_dir)
    plain(plog)
    a = Producer(plog, 1)
    a.send(2)              # 1-2
    marker = a.end(commit=False)
    plain(plog)
    assert plog.aborted_transactions(0, plog.log_end_offset) == [(1, 1)]
    plog.truncate_to(marker)
    assert plog.log_end_offset == marker
    assert plog.aborted_transactions(0, marker) == []
    assert plog.segments.active.txn_index.entries == []
    assert plog.last_stable_offset == 1  # the transaction is open again
    assert a.end(commit=True) == marker
    assert plog.last_stable_offset == plog.log_end_offset
    plog.close()


def test_torn_tail_inside_a_transaction(log_dir: str) -> None:
    config = small_config(**{"segment.bytes": "100000"})
    plog = open_log(log_dir, config)
    plain(plog)
    a = Producer(plog, 1)
    a.send(2)                       # 1-2: the transaction is open from 1
    b = Producer(plog, 2)
    b.send(1)                       # 3
    b.end(commit=False)             # 4
    tail_start = plog.segments.active.size
    a.send(2)                       # 5-6
    a.end(commit=True)              # 7, to be torn away
    assert plog.last_stable_offset == 8
    path = plog.segments.active.log_path
    plog.release_files()
    # Power loss: the last marker is half on disk.
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) - 10)
    again = open_log(log_dir, config, had_clean_shutdown=False, recovery_point=0)
    assert again.log_end_offset == 7
    assert again.last_stable_offset == 1  # a's transaction is open again
    assert again.aborted_transactions(0, 7) == [(2, 3)]
    assert again.segments.active.size > tail_start
    again.close()


@pytest.mark.parametrize("recover_from_segment", [1, -2, -1])
def test_unclean_restart_recovering_only_the_tail(log_dir: str, recover_from_segment: int) -> None:
    """Recovery from a later segment: the .txnindex of the recovered segments is rebuilt and
    earlier ones are kept.  The state is replayed from a producer snapshot written at a roll
    before the recovery point (-2, -1: snapshots of the last two rolls are kept) or, when none
    is old enough (1), from the start of the log."""
    config = small_config(**{"segment.bytes": "500"})
    plog = open_log(log_dir, config)
    producers = [Producer(plog, 20 + i) for i in range(6)]
    for i, p in enumerate(producers):
        p.send(1)
        plain(plog)
        if i:
            producers[i - 1].end(commit=i % 2 == 0)
    assert len(plog.segments) > recover_from_segment + 1
    lso, end = plog.last_stable_offset, plog.log_end_offset
    aborted = plog.aborted_transactions(0, end)
    entries = [list(s.txn_index.entries) for s in plog.segments]
    recovery_point = list(plog.segments)[recover_from_segment].base_offset
    snapshot_used = any(o <= recovery_point for o in plog.producer_state.snapshot_offsets())
    assert snapshot_used == (recover_from_segment < 0)
    again = open_log(log_dir, config, had_clean_shutdown=False, recovery_point=recovery_point)
    assert (again.last_stable_offset, again.log_end_offset) == (lso, end)
    assert again.aborted_transactions(0, end) == aborted
    assert [list(s.txn_index.entries) for s in again.segments] == entries
    again.close()
    plog.release_files()


def test_delete_records_past_an_open_transaction(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "400"}))
    a = Producer(plog, 1)
    a.send(1)                  # 0: opens the transaction
    for _ in range(8):
        plain(plog, 2)
    a.send(1)                  # the transaction's last batch, in a later segment
    assert plog.last_stable_offset == 0
    plog.delete_records_before(5)
    # The transaction is still open (its last batch is kept) and nothing below the log start
    # is readable: the LSO is clamped to the log start.
    assert plog.last_stable_offset == plog.log_start_offset == 5
    assert plog.read(5, 1 << 20, isolation_level=READ_COMMITTED).records is None
    a.end(commit=True)
    assert plog.last_stable_offset == plog.log_end_offset
    plog.close()


def _kafka_collect(entries: list[AbortedTxn], fetch_offset: int, upper: int) -> tuple[list[AbortedTxn], bool]:
    """Kafka TransactionIndex.collectAbortedTxns, a linear scan (the reference for the bisection)."""
    out = []
    for txn in entries:
        if txn.last_offset >= fetch_offset and txn.first_offset < upper:
            out.append(txn)
        if txn.last_stable_offset >= upper:
            return out, True
    return out, False


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(0, 6)), max_size=12),
       st.integers(0, 80), st.integers(1, 30))
def test_txn_index_search_matches_kafkas_scan(tmp_path_factory: pytest.TempPathFactory,
                                              steps: list[tuple[int, int, int]], fetch_offset: int, span: int) -> None:
    """Entries as appends make them: last offsets strictly increase, last stable offsets never
    decrease and never pass the marker + 1."""
    index = TransactionIndex(str(tmp_path_factory.mktemp("txn") / "00000000000000000000.txnindex"), 0)
    last, lso = 0, 0
    for back, gap, lso_step in steps:
        last += gap
        lso = min(max(lso, lso + lso_step), last + 1)
        index.append(AbortedTxn(1, max(last - back, 0), last, lso))
    upper = fetch_offset + span
    assert index.collect_aborted_txns(fetch_offset, upper) == _kafka_collect(index.entries, fetch_offset, upper)
    reopened = TransactionIndex(index.path, 0)
    assert reopened.entries == index.entries and not reopened.corrupt
    index.close()


def test_delete_records_past_a_whole_open_transaction(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(**{"segment.bytes": "400"}))
    calls: list[int] = []
    a = Producer(plog, 1)
    a.send(1)                  # 0: a transaction whose data all goes below the new log start
    plain(plog, 2)             # 1-2
    plain(plog, 2)             # 3-4
    plog.on_stable_advance = lambda _log, nbytes: calls.append(nbytes)
    plog.delete_records_before(3)
    # Kafka forgets a producer with no batch left, and with it its open transaction.
    assert plog.last_stable_offset == plog.high_watermark == 5
    assert len(calls) == 1 and calls[0] > 0  # read_committed waiters at 3 can read 3-4 now
    plog.close()
