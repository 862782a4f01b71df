"""Fixtures and helpers of the log tests: temp log dirs, small-segment configs, batch builders.

Batches come from tests/ref/builder.py (the shared pure-Python builder), wrapped so a test can
say `batch(3, producer_id=7, base_sequence=0)` and get a writable memoryview, as the protocol
layer hands the log a view into the request frame.
"""

from __future__ import annotations

import os

import pytest

from pyk.log.config import LogConfig
from pyk.log.io import LogIO
from pyk.log.manager import LogManager
from pyk.log.partition_log import PartitionLog
from tests.ref.builder import Record, build_batch

BASE_TS = 1_700_000_000_000


def batch(n: int = 1, *, value_size: int = 20, timestamps: list[int] | None = None, ts: int = BASE_TS,
          producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1, compression: int = 0,
          keys: bool = False, transactional: bool = False) -> memoryview:
    """A writable view of one valid v2 batch of `n` records."""
    stamps = timestamps if timestamps is not None else [ts + i for i in range(n)]
    records = [Record(value=bytes([65 + (i % 26)]) * value_size, key=(b"k%d" % i) if keys else None,
                      timestamp=stamps[i]) for i in range(n)]
    return memoryview(build_batch(records, producer_id=producer_id, producer_epoch=producer_epoch,
                                  base_sequence=base_sequence, compression=compression, base_timestamp=stamps[0],
                                  transactional=transactional))


def small_config(**overrides: str) -> LogConfig:
    """Tiny segments and a dense index: every test crosses rolls and index entries."""
    base = {"segment.bytes": "1500", "index.interval.bytes": "100", "segment.index.bytes": "4096"}
    base.update(overrides)
    return LogConfig().with_overrides(base)


_shared_io: LogIO | None = None


def shared_io() -> LogIO:
    """The LogIO of logs opened outside a LogManager by tests that do not watch its threads
    (a LogManager makes its own): made at first use, one per test process.  Tests about the
    threads themselves make and close their own."""
    global _shared_io
    if _shared_io is None:
        _shared_io = LogIO()
    return _shared_io


def open_log(directory: str, config: LogConfig | None = None, *, io: LogIO | None = None,
             **kwargs: object) -> PartitionLog:
    return PartitionLog.load(directory, "t", 0, config or small_config(), io=io or shared_io(),  # type: ignore[arg-type]
                             **kwargs)


def read_all(plog: PartitionLog, start: int | None = None) -> list[tuple[int, int]]:
    """(base offset, last offset) of every batch readable from `start`, via read() only."""
    from tests.ref.batch import batch_info

    out = []
    offset = plog.log_start_offset if start is None else start
    while offset < plog.high_watermark:
        data = plog.read(offset, 1 << 20)
        assert data.records is not None, f"nothing at {offset}"
        raw = os.pread(data.records.fd, data.records.size, data.records.position)
        pos = 0
        while pos + 61 <= len(raw):
            info = batch_info(raw, pos)
            if pos + info.size > len(raw):
                break
            out.append((info.base_offset, info.last_offset))
            pos += info.size
        offset = out[-1][1] + 1
    return out


@pytest.fixture
def log_dir(tmp_path: object) -> str:
    path = os.path.join(str(tmp_path), "t-0")
    return path


def compact_config(**overrides: str) -> LogConfig:
    """A compacted log with small segments and a dense index: cleaning crosses many segments."""
    base = {"cleanup.policy": "compact", "segment.bytes": "4096", "index.interval.bytes": "256",
            "segment.index.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}
    base.update(overrides)
    return LogConfig().with_overrides(base)


@pytest.fixture
def manager(tmp_path):
    mgr = LogManager([str(tmp_path)], LogConfig())
    yield mgr
    mgr.close()


class CleanerCrash(Exception):
    """Raised at a cleaner fault point to stop a pass the way a kill would."""


def crash_cleaner_at(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Makes the cleaner raise CleanerCrash when it reaches fault point `step` (cleaned, swap,
    delete, live)."""
    import pyk.log.cleaner as cleaner_module

    def crash(at: str) -> None:
        if at == step:
            raise CleanerCrash(at)

    monkeypatch.setattr(cleaner_module, "crash_point", crash)
