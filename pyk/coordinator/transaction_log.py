"""The records of `__transaction_state`, in Kafka's own format, and the transaction states.

Schemas from apache/kafka transaction-coordinator/src/main/resources/common/message/
(TransactionLogKey.json, TransactionLogValue.json); like every coordinator record, key and
value open with an int16 version:

    TransactionLogKey   v0 => transactional_id:string
    TransactionLogValue v0 => producer_id:int64 producer_epoch:int16 transaction_timeout_ms:int32
                              transaction_status:int8 transaction_partitions:nullable [PartitionsSchema]
                              transaction_last_update_timestamp_ms:int64
                              transaction_start_timestamp_ms:int64
      PartitionsSchema => topic:string partition_ids:[int32]
    TransactionLogValue v1 is v0 made flexible (compact encodings, tagged fields): tag 0
      previous_producer_id:int64, tag 1 next_producer_id:int64, tag 2 client_transaction_version:int16.

Kafka writes v0 unless the client runs transactions version 2 (KIP-890 part 2, an epoch bump per
transaction), which pyk does not offer; so pyk writes v0 and reads v0 and v1.  A null value is a
tombstone: the transactional id expired (transactional.id.expiration.ms) and compaction drops it.

transaction_status holds the state's id from Kafka's TransactionState.java, so Kafka's own
TransactionLogMessageFormatter reads pyk's topic unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from pyk.errors import ProtocolViolation
from pyk.protocol import primitives as p

KEY_VERSION = 0
VALUE_VERSION = 0
_FLEXIBLE_FROM = 1
_MAX_VALUE_VERSION = 1
_TAG_PREVIOUS_PRODUCER_ID = 0


class TxnState(IntEnum):
    """Kafka's TransactionState ids and names (the names are what ListTransactions and
    DescribeTransactions report, and what `kafka-transactions.sh --state` filters on)."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        return _NAMES[self]

    @classmethod
    def from_kafka_name(cls, name: str) -> TxnState | None:
        return _BY_NAME.get(name)


_NAMES = {
    TxnState.EMPTY: "Empty", TxnState.ONGOING: "Ongoing", TxnState.PREPARE_COMMIT: "PrepareCommit",
    TxnState.PREPARE_ABORT: "PrepareAbort", TxnState.COMPLETE_COMMIT: "CompleteCommit",
    TxnState.COMPLETE_ABORT: "CompleteAbort", TxnState.DEAD: "Dead", TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}  # fmt: skip
_BY_NAME = {name: state for state, name in _NAMES.items()}


@dataclass(slots=True)
class TransactionLogValue:
    """One transactional id's stored state (the whole of it: each record replaces the previous)."""

    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: dict[str, set[int]] = field(default_factory=dict)
    last_update_ms: int = -1
    start_ms: int = -1
    previous_producer_id: int = -1  # v1 only; -1 when read from v0


def encode_key(transactional_id: str) -> bytes:
    out = bytearray(p.INT16.pack(KEY_VERSION))
    p.write_string(out, transactional_id)
    return bytes(out)


def decode_key(data: bytes | memoryview) -> str:
    version, pos = p.read_int16(data, 0)
    if version != KEY_VERSION:
        raise ProtocolViolation(f"TransactionLogKey version {version}: expected {KEY_VERSION}")
    transactional_id, _ = p.read_string(data, pos)
    return transactional_id


def encode_value(value: TransactionLogValue) -> bytes:
    """TransactionLogValue v0 (partitions sorted, so equal states encode to equal bytes)."""
    out = bytearray(p.INT16.pack(VALUE_VERSION))
    out += p.INT64.pack(value.producer_id)
    out += p.INT16.pack(value.producer_epoch)
    out += p.INT32.pack(value.timeout_ms)
    out += p.INT8.pack(int(value.state))
    out += p.INT32.pack(len(value.partitions))
    for topic in sorted(value.partitions):
        p.write_string(out, topic)
        parts = sorted(value.partitions[topic])
        out += p.INT32.pack(len(parts))
        for index in parts:
            out += p.INT32.pack(index)
    out += p.INT64.pack(value.last_update_ms)
    out += p.INT64.pack(value.start_ms)
    return bytes(out)


def decode_value(data: bytes | memoryview) -> TransactionLogValue:
    version, pos = p.read_int16(data, 0)
    if not 0 <= version <= _MAX_VALUE_VERSION:
        raise ProtocolViolation(f"TransactionLogValue version {version}: expected 0-{_MAX_VALUE_VERSION}")
    flexible = version >= _FLEXIBLE_FROM
    producer_id, pos = p.read_int64(data, pos)
    epoch, pos = p.read_int16(data, pos)
    timeout_ms, pos = p.read_int32(data, pos)
    status, pos = p.read_int8(data, pos)
    try:
        state = TxnState(status)
    except ValueError:
        raise ProtocolViolation(f"TransactionLogValue: unknown transaction status {status}") from None
    count, pos = _array_length(data, pos, flexible)
    partitions: dict[str, set[int]] = {}
    for _ in range(max(count, 0)):  # -1: null, no partitions
        topic, pos = (p.read_compact_string if flexible else p.read_string)(data, pos)
        n, pos = _array_length(data, pos, flexible)
        ids = partitions.setdefault(topic, set())
        for _ in range(max(n, 0)):
            index, pos = p.read_int32(data, pos)
            ids.add(index)
        if flexible:
            pos = p.skip_tagged_fields(data, pos)
    last_update_ms, pos = p.read_int64(data, pos)
    start_ms, pos = p.read_int64(data, pos)
    previous = -1
    if flexible:
        tags, pos = p.read_tagged_fields(data, pos)
        if _TAG_PREVIOUS_PRODUCER_ID in tags:
            previous, _ = p.read_int64(tags[_TAG_PREVIOUS_PRODUCER_ID], 0)
    return TransactionLogValue(producer_id, epoch, timeout_ms, state, partitions, last_update_ms, start_ms, previous)


def _array_length(data: bytes | memoryview, pos: int, flexible: bool) -> tuple[int, int]:
    if flexible:
        count, pos = p.read_uvarint(data, pos)
        return count - 1, pos
    return p.read_int32(data, pos)
