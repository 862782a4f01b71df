"""PartitionLog.append of one 10 x 100 B batch: plain, idempotent and transactional producers,
plus the cost of a COMMIT marker (append_control).  What transactions add to the append path is
the per-producer transaction bookkeeping (ProducerStateManager) and the last-stable-offset hook;
the write itself is the same os.write.  Kafka's counterpart: jmh ProducerStateManagerBench-like
numbers are not published per append, so the comparison here is pyk against itself.

Every round appends a fresh copy of the batch with the producer's next sequence (the copy and
the header patch are in the untimed setup); the log lives in a temp dir with 1 GiB segments so
no roll lands in the timed part.
"""

from __future__ import annotations

import struct
import tempfile

import pytest
from bench_inputs import ROOT  # noqa: F401  (puts the repository root on sys.path)

from pyk.log.config import LogConfig
from pyk.log.io import LogIO
from pyk.log.partition_log import PartitionLog
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000
RECORDS = 10
ROUNDS = 3000


def _log(tmp: str) -> PartitionLog:
    config = LogConfig().with_overrides({"segment.bytes": str(1 << 30), "message.timestamp.before.max.ms": str(1 << 62)})
    return PartitionLog.load(tmp, "bench", 0, config, io=LogIO())


def _template(producer_id: int, transactional: bool) -> bytes:
    records = [Record(b"x" * 100, timestamp=NOW) for _ in range(RECORDS)]
    return bytes(build_batch(records, producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                             base_sequence=0 if producer_id >= 0 else -1, transactional=transactional,
                             base_timestamp=NOW))


def _run(benchmark: object, kind: str) -> None:
    producer_id = -1 if kind == "plain" else 1
    template = _template(producer_id, kind == "transactional")
    seq = [0]
    with tempfile.TemporaryDirectory() as tmp:
        plog = _log(tmp)
        plog.on_stable_advance = lambda _log, _n: None  # the broker always sets one

        def setup() -> tuple[tuple[memoryview, int], dict[str, object]]:
            batch = bytearray(template)
            if producer_id >= 0:
                # baseSequence lies inside the CRC: rebuild the CRC after patching it.
                struct.pack_into(">i", batch, 53, seq[0])
                from tests.ref.crc32c import crc32c
                struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
                seq[0] += RECORDS
            return (memoryview(batch), NOW), {}

        benchmark.group = f"PartitionLog.append {RECORDS} x 100 B"  # type: ignore[attr-defined]
        benchmark.pedantic(plog.append, setup=setup, rounds=ROUNDS, iterations=1)  # type: ignore[attr-defined]
        if kind == "transactional":
            assert plog.last_stable_offset == 0 < plog.log_end_offset
        plog.close()


@pytest.mark.parametrize("kind", ["plain", "idempotent", "transactional"])
def test_append(benchmark, kind):
    _run(benchmark, kind)


def test_append_control_commit(benchmark):
    """One transaction of one batch, then its COMMIT marker: the marker is what is timed."""
    template = _template(1, True)
    with tempfile.TemporaryDirectory() as tmp:
        plog = _log(tmp)
        plog.on_stable_advance = lambda _log, _n: None
        epoch = [0]

        def setup() -> tuple[tuple[int, int, bool, int, int], dict[str, object]]:
            # Each round: a new epoch (as after InitProducerId), sequence 0, one batch, open txn.
            epoch[0] += 1
            batch = bytearray(template)
            struct.pack_into(">h", batch, 51, epoch[0])
            from tests.ref.crc32c import crc32c
            struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
            plog.append(memoryview(batch), NOW)
            return (1, epoch[0], True, 0, NOW), {}

        benchmark.group = "PartitionLog.append_control (COMMIT)"
        benchmark.pedantic(plog.append_control, setup=setup, rounds=ROUNDS, iterations=1)
        assert plog.last_stable_offset == plog.log_end_offset
        plog.close()
