"""`__transaction_state` records (pyk/coordinator/transaction_log.py) against Kafka's format:
round trips, the bytes Kafka's TransactionLog writes for a known value, and v1 (flexible) reads."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from pyk.coordinator.transaction_log import (
    TransactionLogValue,
    TxnState,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)


@given(st.text(min_size=1, max_size=50), st.integers(0, 2**62), st.integers(0, 2**15 - 1), st.integers(1, 2**31 - 1),
       st.sampled_from(list(TxnState)),
       st.dictionaries(st.text(min_size=1, max_size=20), st.sets(st.integers(0, 1000), min_size=1), max_size=4),
       st.integers(-1, 2**50), st.integers(-1, 2**50))
def test_round_trip(tid, pid, epoch, timeout, state, partitions, updated, started):
    value = TransactionLogValue(pid, epoch, timeout, state, partitions, updated, started)
    assert decode_key(encode_key(tid)) == tid
    assert decode_value(encode_value(value)) == value


def test_v0_layout_matches_kafka():
    value = TransactionLogValue(7, 3, 60000, TxnState.ONGOING, {"t": {1, 0}}, 1000, 900)
    expected = (struct.pack(">hqhib", 0, 7, 3, 60000, 1) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t"
                + struct.pack(">iii", 2, 0, 1) + struct.pack(">qq", 1000, 900))
    assert encode_value(value) == expected
    assert encode_key("tx") == struct.pack(">hh", 0, 2) + b"tx"


def test_reads_flexible_v1_with_tagged_fields():
    body = (struct.pack(">hqhib", 1, 7, 3, 60000, 4) + bytes([2]) + bytes([2]) + b"t" + bytes([2])
            + struct.pack(">i", 5) + bytes([0]) + struct.pack(">qq", 1000, 900)
            + bytes([1, 0, 8]) + struct.pack(">q", 6))  # tag 0 (previous producer id) = 6
    got = decode_value(body)
    assert (got.producer_id, got.state, got.partitions, got.previous_producer_id) == (
        7, TxnState.COMPLETE_COMMIT, {"t": {5}}, 6)
    assert got.state.kafka_name == "CompleteCommit"
