"""Produce: validate, append and acknowledge one record batch per partition.

acks=0 gets no response at all; acks=1 and acks=all are answered once the batch is written to
the segment file (on a single node the leader is the whole ISR, so both mean "in the log";
min.insync.replicas above 1 cannot be met and acks=all then gets NOT_ENOUGH_REPLICAS).  The
write reaches the page cache before the answer, so a kill -9 of the broker loses nothing that
was acknowledged; fsync follows the flush policy (flush.messages / flush.ms).  When an append
reaches flush.messages, the answer waits for the group commit that syncs it
(pyk.server.engine.GroupCommit): one fdatasync answers every request waiting together, and a
failed one turns into KAFKA_STORAGE_ERROR for the partitions that waited on it.

Transactional producers (a transactional_id, transactional batches): the log opens the producer's
transaction in a partition at its first batch there and the coordinator's markers end it
(pyk/coordinator/transaction.py).  That first batch is verified first, as Kafka 3.6+ does
(KIP-890 part 1): the transaction coordinator, on whichever shard, must have the partition in the
producer's ongoing transaction, else INVALID_TXN_STATE (a fenced epoch: INVALID_PRODUCER_EPOCH;
a coordinator that cannot answer: NOT_ENOUGH_REPLICAS, which the producer retries).  Later
batches of the same transaction append without a round trip.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.handlers import error_for

API_KEY = ApiKey.PRODUCE
MIN_VERSION = 0  # v0-v2 carry message formats 0/1, which the log up-converts to v2 (pyk/log/legacy.py)
MAX_VERSION = 9


MAGIC_OFFSET = 16  # of the magic byte in a v2 batch and of the magic in a v0/v1 message set entry
FIRST_V2_ONLY_VERSION = 3
_ATTRIBUTES = struct.Struct(">h")  # at byte 21 of a v2 batch
_ATTRIBUTES_OFFSET = 21
_PRODUCER = struct.Struct(">qh")  # producerId, producerEpoch at byte 43
_PRODUCER_OFFSET = 43
_BATCH_HEADER_SIZE = 61
_TRANSACTIONAL = 0x10
# Verification answers as the producer should see them (Kafka's AddPartitionsToTxnManager).
_VERIFY_ERRORS = {
    ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.INVALID_PRODUCER_ID_MAPPING: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.NOT_COORDINATOR: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_NOT_AVAILABLE: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS: ErrorCode.NOT_ENOUGH_REPLICAS,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS,
}


def _append(broker: Any, version: int, acks: int, topic: str, partition: int, records: Any,
            now_ms: int, flushes: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> dict[str, Any]:
    if records is None or len(records) == 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request without a record batch")
    if version >= FIRST_V2_ONLY_VERSION and len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] != 2:
        # As Kafka: v3+ carries magic v2 batches only; legacy sets come with Produce v0-v2.
        raise KafkaError(ErrorCode.INVALID_RECORD, f"Produce v{version} requires magic 2, found {records[MAGIC_OFFSET]}")
    plog = broker.partition_log(topic, partition)
    if acks == -1 and plog.config.min_insync_replicas > 1:
        raise KafkaError(
            ErrorCode.NOT_ENOUGH_REPLICAS,
            f"min.insync.replicas={plog.config.min_insync_replicas} but this single node is the only in-sync replica",
        )
    info = plog.append(records, now_ms)
    if not info.duplicate:
        broker.on_append(topic, partition, len(records))
    result = {
        "error_code": ErrorCode.NONE,
        "base_offset": info.first_offset,
        "log_append_time_ms": info.log_append_time,
        "log_start_offset": info.log_start_offset,
    }
    flush = broker.group_commit.waiter(plog) if acks != 0 else None
    if flush is not None:
        flushes.append((result, flush))
    return result


def _failed(code: int, message: str | None) -> dict[str, Any]:
    return {"error_code": code, "base_offset": -1, "log_append_time_ms": -1, "log_start_offset": -1,
            "error_message": message}


async def _after_flush(body: dict[str, Any], flushes: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> dict[str, Any]:
    """The response, once every flush its partitions wait for is done."""
    for result, flush in flushes:
        try:
            await asyncio.shield(flush)  # shared by every request of the round: never cancel it
        except KafkaError as exc:
            result.update(_failed(exc.code, exc.message))
    return body


def _needs_verification(broker: Any, topic: str, partition: int, records: Any) -> tuple[int, int] | None:
    """(producer id, epoch) of a transactional v2 batch that would open its producer's
    transaction in this (local) partition; None when there is nothing to verify."""
    if records is None or len(records) < _BATCH_HEADER_SIZE or records[MAGIC_OFFSET] != 2:
        return None
    if not _ATTRIBUTES.unpack_from(records, _ATTRIBUTES_OFFSET)[0] & _TRANSACTIONAL:
        return None
    plog = broker.logs.get(topic, partition)
    if plog is None:
        return None  # the append reports NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION
    producer_id, epoch = _PRODUCER.unpack_from(records, _PRODUCER_OFFSET)
    entry = plog.producer_state.producers.get(producer_id)
    if entry is not None and entry.epoch == epoch and entry.current_txn_first_offset >= 0:
        return None  # its transaction is already open here: verified when it began
    return producer_id, epoch


def handle(broker: Any, header: Any, request: dict[str, Any]) -> Any:
    tid = request.get("transactional_id")
    if tid is None:
        return _produce(broker, header, request, {})
    pending: dict[tuple[str, int], asyncio.Future[ErrorCode]] = {}
    for topic in request["topic_data"]:
        for pdata in topic["partition_data"]:
            producer = _needs_verification(broker, topic["name"], pdata["index"], pdata["records"])
            if producer is not None:
                pending[(topic["name"], pdata["index"])] = broker.txn.verify_produce(
                    tid, producer[0], producer[1], topic["name"], pdata["index"])
    if not pending:
        return _produce(broker, header, request, {})
    return _verified(broker, header, request, pending)


async def _verified(broker: Any, header: Any, request: dict[str, Any],
                    pending: dict[tuple[str, int], asyncio.Future[ErrorCode]]) -> dict[str, Any] | None:
    errors = {}
    for tp, future in pending.items():
        code = await future
        if code != ErrorCode.NONE:
            errors[tp] = KafkaError(_VERIFY_ERRORS.get(code, code),
                                    f"{tp[0]}-{tp[1]} is not in the producer's transaction ({code.name})")
    result = _produce(broker, header, request, errors)
    return await result if asyncio.iscoroutine(result) else result


def _produce(broker: Any, header: Any, request: dict[str, Any],
             refused: dict[tuple[str, int], KafkaError]) -> Any:
    """The response body, None for acks=0, or an awaitable of the body when a flush is due."""
    acks = request["acks"]
    now_ms = int(time.time() * 1000)
    responses = []
    flushes: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
    for topic in request["topic_data"]:
        name = topic["name"]
        partitions = []
        for pdata in topic["partition_data"]:
            index = pdata["index"]
            try:
                if acks not in (0, 1, -1):
                    raise KafkaError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be 0, 1 or -1, found {acks}")
                if (name, index) in refused:
                    raise refused[(name, index)]
                result = _append(broker, header.api_version, acks, name, index, pdata["records"], now_ms, flushes)
            except Exception as exc:
                code, message = error_for(exc, f"produce to {name}-{index}")
                result = _failed(code, message)
            result["index"] = index
            partitions.append(result)
        responses.append({"name": name, "partition_responses": partitions})
    if acks == 0:
        return None  # the flush still happens; nobody waits for it
    body = {"responses": responses, "throttle_time_ms": 0}
    return _after_flush(body, flushes) if flushes else body
