"""The data path, pyk against Apache Kafka: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch and
DeleteRecords, their offsets and timestamps, and their error codes for bad requests.

Record batches are built once per scenario with fixed timestamps, so both brokers store the same
bytes; Fetch answers compare the batches byte for byte (offsets, leader epoch and CRC as the
broker rewrote them).
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.batch import build_batch
from pyk.log.record_batch import read_header, write_header
from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import Known, Peer, extra_message

T0 = 1_700_000_000_000  # record timestamps (CreateTime), the same on both brokers
EARLIEST, LATEST, MAX_TIMESTAMP = -2, -1, -3


def batch(*values: bytes, ts: int = T0, pid: int = -1, epoch: int = -1, seq: int = -1,
          transactional: bool | None = None) -> bytes:
    """A v2 batch; with a producer id it is transactional unless `transactional=False` (idempotent)."""
    out = build_batch([(b"k", v) for v in values], ts, pid, epoch, seq)
    if transactional is False:
        write_header(out, read_header(out)._replace(attributes=0))
    return bytes(out)


def produce(p: Peer, topic: str, records: bytes | None, partition: int = 0, acks: int = -1,
            transactional_id: str | None = None, version: int = 9) -> dict[str, Any]:
    body = {"transactional_id": transactional_id, "acks": acks, "timeout_ms": 10000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": records}]}]}  # fmt: skip
    return p.call(ApiKey.PRODUCE, version, body, p.leader(topic, partition))


def fetch(p: Peer, topic: str, offset: int, partition: int = 0, isolation: int = 0) -> dict[str, Any]:
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": isolation,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [],
            "topics": [{"topic": topic, "partitions": [{"partition": partition, "fetch_offset": offset,
                                                        "partition_max_bytes": 1 << 20}]}]}  # fmt: skip
    resp = p.call(ApiKey.FETCH, 12, body, p.leader(topic, partition))
    for t in resp["responses"]:
        for part in t["partitions"]:
            if part["records"] is not None:
                part["records"] = bytes(part["records"])
    return resp


def list_offsets(p: Peer, topic: str, timestamps: list[int], partition: int = 0, isolation: int = 0,
                 version: int = 7) -> list[dict[str, Any]]:
    """One ListOffsets request per timestamp (Kafka refuses a partition twice in one request)."""
    out = []
    for ts in timestamps:
        body = {"replica_id": -1, "isolation_level": isolation, "topics": [
            {"name": topic, "partitions": [{"partition_index": partition, "timestamp": ts}]}]}  # fmt: skip
        out.append(p.call(ApiKey.LIST_OFFSETS, version, body, p.leader(topic, partition)))
    return out


def offset_for_leader_epoch(p: Peer, topic: str, epoch: int, current: int = -1, partition: int = 0) -> dict[str, Any]:
    body = {"replica_id": -1, "topics": [{"topic": topic, "partitions": [
        {"partition": partition, "current_leader_epoch": current, "leader_epoch": epoch}]}]}  # fmt: skip
    return p.call(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, body, p.leader(topic, partition))


def test_produce_then_fetch_same_bytes(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        produced = [produce(p, topic, batch(b"a", b"b")), produce(p, topic, batch(b"c", ts=T0 + 5))]
        return {"produced": produced, "fetched": fetch(p, topic, 0), "from_middle": fetch(p, topic, 1),
                "at_end": fetch(p, topic, 3)}

    pair.same(scenario)


def test_list_offsets_earliest_latest_max_and_by_timestamp(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        empty = list_offsets(p, topic, [EARLIEST, LATEST, MAX_TIMESTAMP, T0])
        for ts in (T0, T0 + 20, T0 + 10):
            produce(p, topic, batch(b"x", b"y", ts=ts))
        full = list_offsets(p, topic, [EARLIEST, LATEST, MAX_TIMESTAMP, T0 - 1, T0, T0 + 1, T0 + 10, T0 + 20,
                                       T0 + 21])  # fmt: skip
        return {"empty": empty, "full": full}

    pair.same(scenario)


def test_list_offsets_old_versions_and_read_committed(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        produce(p, topic, batch(b"x", ts=T0))
        return {f"v{v}": list_offsets(p, topic, [EARLIEST, LATEST, T0], version=v) for v in (1, 2, 4)} | {
            "committed": list_offsets(p, topic, [LATEST], isolation=1)}

    pair.same(scenario)


def test_list_offsets_unknown_topic_and_partition(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return {"topic": list_offsets(p, f"{topic}-none", [LATEST]),
                "partition": list_offsets(p, topic, [LATEST], partition=7),
                "bad_timestamp": list_offsets(p, topic, [-7])}

    pair.same(scenario)


def test_offset_for_leader_epoch(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        produce(p, topic, batch(b"a", b"b", b"c"))
        return {
            "epoch0": offset_for_leader_epoch(p, topic, 0),
            "epoch0_current0": offset_for_leader_epoch(p, topic, 0, current=0),
            "future_epoch": offset_for_leader_epoch(p, topic, 5),
            "fenced": offset_for_leader_epoch(p, topic, 0, current=7),
            "unknown_partition": offset_for_leader_epoch(p, topic, 0, partition=3),
            "unknown_topic": offset_for_leader_epoch(p, f"{topic}-none", 0),
        }

    pair.same(scenario)


def test_delete_records_and_offsets(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        produce(p, topic, batch(b"a", b"b", b"c", b"d"))

        def delete(offset: int) -> Any:
            body = {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": offset}]}],
                    "timeout_ms": 10000}  # fmt: skip
            return p.call(ApiKey.DELETE_RECORDS, 2, body, p.leader(topic))

        out = {"to2": delete(2), "beyond": delete(9), "back": delete(1), "hw": delete(-1)}
        out["offsets"] = list_offsets(p, topic, [EARLIEST, LATEST, T0])
        out["fetch_deleted"] = fetch(p, topic, 0)
        return out

    pair.same(scenario)


def test_produce_fetch_unknown_topic(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        return {"produce": produce(p, topic, batch(b"x")), "fetch": fetch(p, topic, 0)}

    pair.same(scenario, known=[extra_message("produce", "responses", 0, "partition_responses", 0)])


def test_produce_unknown_partition(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return {"produce": produce(p, topic, batch(b"x"), partition=4), "fetch": fetch(p, topic, 0, partition=4)}

    pair.same(scenario, known=[extra_message("produce", "responses", 0, "partition_responses", 0)])


def test_fetch_out_of_range(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        produce(p, topic, batch(b"a", b"b"))
        return {"beyond": fetch(p, topic, 5), "negative": fetch(p, topic, -1)}

    pair.same(scenario)


def test_produce_record_too_large(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic, configs={"max.message.bytes": "200"})
        return {"too_large": produce(p, topic, batch(b"v" * 300)), "fits": produce(p, topic, batch(b"v" * 10))}

    pair.same(scenario, known=[extra_message("too_large", "responses", 0, "partition_responses", 0)])


def test_produce_invalid_required_acks(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return {acks: produce(p, topic, batch(b"x"), acks=acks) for acks in (2, -2, 5)}

    pair.same(scenario, known=[extra_message(acks, "responses", 0, "partition_responses", 0) for acks in (2, -2, 5)])


def test_produce_bad_records(pair: Pair, topic: str) -> None:
    good = batch(b"x")
    bad_crc = good[:17] + bytes([good[17] ^ 0xFF]) + good[18:]
    bad_magic = good[:16] + b"\x07" + good[17:]

    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return {"crc": produce(p, topic, bad_crc), "magic": produce(p, topic, bad_magic)}

    pair.same(scenario, known=[extra_message("crc", "responses", 0, "partition_responses", 0)])


def test_produce_transactional_id_on_plain_batch(pair: Pair, topic: str) -> None:
    """A transactional id on a request whose batches are not transactional, and a transactional
    batch no transaction knows about."""

    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return {"plain": produce(p, topic, batch(b"x"), transactional_id=f"{topic}-txn"),
                "unknown_txn": produce(p, topic, bytes(build_batch([(b"k", b"v")], T0, 4242, 0, 0)),
                                       transactional_id=f"{topic}-txn")}

    pair.same(scenario, known=[extra_message("unknown_txn", "responses", 0, "partition_responses", 0)])


def test_idempotent_sequences(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        init = p.call(ApiKey.INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                   "producer_id": -1, "producer_epoch": -1})
        pid = init["producer_id"]
        out: dict[str, Any] = {"init": init}
        out["first"] = produce(p, topic, batch(b"a", b"b", pid=pid, epoch=0, seq=0, transactional=False))
        out["duplicate"] = produce(p, topic, batch(b"a", b"b", pid=pid, epoch=0, seq=0, transactional=False))
        out["gap"] = produce(p, topic, batch(b"c", pid=pid, epoch=0, seq=5, transactional=False))
        out["next"] = produce(p, topic, batch(b"c", pid=pid, epoch=0, seq=2, transactional=False))
        out["unknown_pid_not_at_zero"] = produce(p, topic, batch(b"d", pid=pid + 100000, epoch=0, seq=3,
                                                                 transactional=False))
        out["transactional_without_id"] = produce(p, topic, batch(b"e", pid=pid, epoch=0, seq=3))
        out["offsets"] = list_offsets(p, topic, [LATEST])
        return out

    unknown = ("unknown_pid_not_at_zero", "responses", 0, "partition_responses", 0)
    pair.same(scenario, known=[
        # Kafka reports the batch's timestamp as the log append time of a duplicate.
        Known(("duplicate", "responses", 0, "partition_responses", 0, "log_append_time_ms"), T0, -1),
        extra_message("gap", "responses", 0, "partition_responses", 0),
        # pyk refuses a first batch of an unknown producer that does not start at sequence 0.
        Known((*unknown, "error_code"), 0, 45), Known((*unknown, "base_offset"), 3, -1), extra_message(*unknown),
        # pyk appends a transactional batch that comes without a transactional id; Kafka refuses
        # the request, as no transactional id is authorized for it.
        Known(("transactional_without_id", *unknown[1:], "error_code"), 53, 0),
        Known(("transactional_without_id", *unknown[1:], "base_offset"), -1, 3),
        Known(("transactional_without_id", *unknown[1:], "log_start_offset"), -1, 0),
    ])
