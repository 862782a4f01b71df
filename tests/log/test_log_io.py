"""LogIO: the storage I/O threads are made by a LogManager (none at import), a roll hands its
syncs to them instead of running them on the calling (event loop) thread, and close() stops
them all."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from pyk.log import LogConfig, LogManager
from pyk.log.files import parse_offset_file
from pyk.log.io import LogIO
from pyk.log.segment import LogSegment
from tests.log.conftest import BASE_TS, batch, open_log, small_config

THREAD_PREFIXES = ("pyk-writeback", "pyk-roll-flush", "pyk-group-commit", "pyk-file-delete")


def io_threads(besides: frozenset[threading.Thread] = frozenset()) -> list[str]:
    """The LogIO threads alive, but those in `besides` (other tests' shared LogIO, say)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIXES) and t not in besides]


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every fsync / fdatasync / segment flush as (thread name, what), in call order."""
    calls: list[tuple[str, str]] = []

    def spy(name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            calls.append((threading.current_thread().name, f"{name} {os.readlink(f'/proc/self/fd/{fd}')}"))
            real(fd)
        return call

    monkeypatch.setattr(os, "fsync", spy("fsync", os.fsync))
    monkeypatch.setattr(os, "fdatasync", spy("fdatasync", os.fdatasync))
    real_flush = LogSegment.flush

    def segment_flush(segment: LogSegment) -> None:
        calls.append((threading.current_thread().name, f"segment {segment.base_offset}"))
        real_flush(segment)

    monkeypatch.setattr(LogSegment, "flush", segment_flush)
    yield calls


def test_roll_hands_its_syncs_to_the_roll_flush_thread(log_dir: str, syncs: list[tuple[str, str]]) -> None:
    """An append that rolls returns without any sync on its thread; the rolled segment, the
    roll's producer snapshot and the directory are synced by the roll flush job, and the
    recovery point moves only once that job completed (held here by a gate on its thread)."""
    io = LogIO()
    gate = threading.Event()
    holding = io.roll_flush.submit(gate.wait)  # the roll flush thread is busy until gate.set()
    plog = open_log(log_dir, small_config(**{"segment.bytes": "1000000"}), io=io)
    plog.append(batch(3, producer_id=7, producer_epoch=0, base_sequence=0), BASE_TS)
    # The log's first append under an epoch writes the leader-epoch-checkpoint (once per epoch,
    # not per roll): only what follows is watched.
    syncs.clear()
    rolled = plog.segments.active
    plog.roll(BASE_TS)
    plog.append(batch(3, producer_id=7, producer_epoch=0, base_sequence=3), BASE_TS)
    snapshot = os.path.join(log_dir, f"{3:020d}.snapshot")
    assert os.path.exists(snapshot), "the roll wrote its producer snapshot"
    assert syncs == [], "nothing was synced on the appending thread"

    plog.flush_if_due(BASE_TS)  # the timer hands the job over and returns at once
    job = plog.roll_flush
    assert job is not None and not job.done() and not holding.done()
    assert plog.recovery_point == 0 and syncs == []

    gate.set()
    job.result(timeout=60)
    assert {thread for thread, _ in syncs} == {"pyk-roll-flush_0"}
    what = [w for _, w in syncs]
    assert f"segment {rolled.base_offset}" in what
    assert f"fsync {snapshot}" in what
    assert what[-1] == f"fsync {os.path.realpath(log_dir)}", "the directory last: it publishes the names"
    plog.flush_if_due(BASE_TS)
    assert plog.recovery_point == 3
    plog.close()
    io.close()


def test_unsynced_roll_snapshots_lost_recover_from_the_log(log_dir: str) -> None:
    """A power failure before the roll flush: the roll's snapshot may be empty or torn under
    its name.  The loader rejects it and rebuilds the producer state from the log, so an
    idempotent retry is still recognised as a duplicate and the next sequence accepted."""
    plog = open_log(log_dir)
    for seq in range(0, 180, 3):
        plog.append(batch(3, producer_id=7, producer_epoch=0, base_sequence=seq), BASE_TS)
    assert len(plog.segments) > 2
    end = plog.log_end_offset
    snapshots = [n for n in os.listdir(log_dir) if parse_offset_file(n, ".snapshot") is not None]
    assert snapshots
    for name in snapshots:  # as a power failure leaves a renamed file whose data never reached the disk
        with open(os.path.join(log_dir, name), "r+b") as fh:
            fh.truncate(0)
    plog.release_files()
    reopened = open_log(log_dir, recovery_point=0, had_clean_shutdown=False)
    assert reopened.log_end_offset == end
    retry = reopened.append(batch(3, producer_id=7, producer_epoch=0, base_sequence=177), BASE_TS)
    assert retry.duplicate and (retry.first_offset, retry.last_offset) == (end - 3, end - 1)
    following = reopened.append(batch(3, producer_id=7, producer_epoch=0, base_sequence=180), BASE_TS)
    assert not following.duplicate and following.first_offset == end
    reopened.close()


def test_manager_close_stops_every_io_thread(tmp_path) -> None:
    """LogManager.close() stops the threads of its LogIO after using each of them: none left."""
    others = frozenset(threading.enumerate())  # the suite's shared LogIO may run already
    manager = LogManager([str(tmp_path)], LogConfig())
    config = small_config(**{"segment.bytes": "20000", "segment.writeback.bytes": "4096", "file.delete.delay.ms": "0"})
    plog = manager.create("t", 0, config)
    for i in range(40):
        plog.append(batch(5, value_size=200, ts=BASE_TS + i), BASE_TS + i)  # rolls; writeback requests
    plog.flush_if_due(BASE_TS)  # the roll flush job
    manager.io.group_commit.submit(lambda: None).result(timeout=60)  # as the epoll engine does
    manager.create("gone", 0, config)
    manager.delete("gone", 0)
    manager.release_expired(2**62)  # the directory removal, on the file deletion thread
    assert set(name.rsplit("_", 1)[0] for name in io_threads(others)) == set(THREAD_PREFIXES)
    manager.close()
    assert io_threads(others) == []
    assert not any(n.startswith("gone") for n in os.listdir(tmp_path)), "queued deletions ran before the stop"


def test_import_makes_no_threads() -> None:
    """Importing the broker (and with it every log module) starts no thread and makes no pool."""
    code = ("import gc, threading, concurrent.futures, pyk.server.broker, pyk.log.cleaner, pyk.cli; "
            "pools = [o for o in gc.get_objects() if isinstance(o, concurrent.futures.Executor)]; "
            "print(sorted(t.name for t in threading.enumerate()), len(pools))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == "['MainThread'] 0"
