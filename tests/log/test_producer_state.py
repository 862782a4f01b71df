"""Idempotent producers: duplicates, sequence gaps, epochs, wrap-around, state across restarts."""

from __future__ import annotations

import os

import pytest

from pyk.errors import ErrorCode, KafkaError
from pyk.log.producer_state import SEQUENCE_MAX, last_sequence
from tests.log.conftest import BASE_TS, batch, open_log

PID = 4242


def produce(plog, seq: int, n: int = 2, epoch: int = 0, pid: int = PID):  # noqa: ANN001, ANN201
    return plog.append(batch(n, producer_id=pid, producer_epoch=epoch, base_sequence=seq), BASE_TS)


def code_of(fn) -> ErrorCode:  # noqa: ANN001
    with pytest.raises(KafkaError) as err:
        fn()
    return err.value.code


def test_last_sequence_wraps() -> None:
    assert last_sequence(5, 3) == 8
    assert last_sequence(SEQUENCE_MAX, 0) == SEQUENCE_MAX
    assert last_sequence(SEQUENCE_MAX, 1) == 0
    assert last_sequence(SEQUENCE_MAX - 1, 4) == 2


def test_duplicates_of_last_five_return_original_offsets(log_dir: str) -> None:
    plog = open_log(log_dir)
    originals = [produce(plog, seq) for seq in range(0, 14, 2)]  # 7 batches
    end = plog.log_end_offset
    for seq, original in zip(range(4, 14, 2), originals[2:], strict=True):  # the last 5
        dup = produce(plog, seq)
        assert dup.duplicate and (dup.first_offset, dup.last_offset) == (original.first_offset, original.last_offset)
    assert plog.log_end_offset == end, "a duplicate writes nothing"
    # Older than the last 5: not recognisable, and out of sequence.
    assert code_of(lambda: produce(plog, 0)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(plog, 14).first_offset == end


def test_sequence_rules(log_dir: str) -> None:
    plog = open_log(log_dir)
    assert code_of(lambda: produce(plog, 3)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # new producer at 3
    produce(plog, 0)
    assert code_of(lambda: produce(plog, 5)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # gap
    assert code_of(lambda: produce(plog, 1)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # overlap, not a dup
    produce(plog, 2)
    # Partial overlap with a different range is not a duplicate either.
    assert code_of(lambda: produce(plog, 2, n=3)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    # Other producers are independent; non-idempotent batches are not checked at all.
    produce(plog, 0, pid=PID + 1)
    plog.append(batch(1), BASE_TS)
    assert plog.log_end_offset == 7


def test_epoch_fencing_and_bump(log_dir: str) -> None:
    plog = open_log(log_dir)
    produce(plog, 0, epoch=3)
    assert code_of(lambda: produce(plog, 2, epoch=2)) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert code_of(lambda: produce(plog, 2, epoch=4)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # new epoch at 2
    produce(plog, 0, epoch=4)
    assert code_of(lambda: produce(plog, 2, epoch=3)) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert produce(plog, 0, epoch=4).duplicate


def test_sequence_wraps_at_int_max(log_dir: str) -> None:
    plog = open_log(log_dir)
    produce(plog, 0, n=1)
    # Pretend the producer has come a long way: its last batch ended at INT_MAX - 2.
    plog.producer_state.producers[PID].batches.append((SEQUENCE_MAX - 3, SEQUENCE_MAX - 2, 1, 2))
    produce(plog, SEQUENCE_MAX - 1, n=2)  # ends exactly at INT_MAX
    assert produce(plog, 0, n=2).first_offset == 3  # wraps to 0
    assert produce(plog, 2, n=3).first_offset == 5
    assert produce(plog, 2, n=3).duplicate
    # A batch crossing INT_MAX continues at the wrapped sequence.
    plog.producer_state.producers[PID].batches.append((SEQUENCE_MAX - 5, SEQUENCE_MAX - 3, 8, 10))
    assert produce(plog, SEQUENCE_MAX - 2, n=5).first_offset == 8
    assert produce(plog, 2, n=1).first_offset == 13


@pytest.mark.parametrize("clean", [True, False])
def test_state_survives_restart(log_dir: str, clean: bool) -> None:
    plog = open_log(log_dir)
    originals = [produce(plog, seq) for seq in range(0, 60, 2)]  # rolls several segments
    assert len(plog.segments) > 2
    if clean:
        plog.close()
        assert any(n.endswith(".snapshot") for n in os.listdir(log_dir))
    else:
        for segment in plog.segments:
            os.close(segment.fd)
    again = open_log(log_dir, had_clean_shutdown=clean, recovery_point=plog.recovery_point)
    dup = produce(again, 58)
    assert dup.duplicate and dup.first_offset == originals[-1].first_offset
    assert code_of(lambda: produce(again, 61)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert produce(again, 60).first_offset == originals[-1].last_offset + 1


def test_damaged_or_stale_snapshot_falls_back_to_replay(log_dir: str) -> None:
    plog = open_log(log_dir)
    for seq in range(0, 20, 2):
        produce(plog, seq)
    plog.close()
    snaps = sorted(n for n in os.listdir(log_dir) if n.endswith(".snapshot"))
    for name in snaps:
        with open(os.path.join(log_dir, name), "r+b") as fh:
            fh.seek(10)
            fh.write(b"\xee\xee")
    # A snapshot beyond the log end (the tail was lost) must not be used either.
    with open(os.path.join(log_dir, "00000000000000099999.snapshot"), "wb") as fh:
        fh.write(b"junk")
    again = open_log(log_dir, had_clean_shutdown=True, recovery_point=20)
    assert produce(again, 18).duplicate
    assert produce(again, 20).first_offset == 20
    assert not os.path.exists(os.path.join(log_dir, "00000000000000099999.snapshot"))
