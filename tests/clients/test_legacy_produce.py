"""Produce v0-v2 (message formats 0 and 1) against a real `pyk serve`: stored as v2, consumed as v2.

Raw Produce requests are encoded with pyk.protocol (the request side of the codec, not the
broker's handler) and sent to the partition's leader (one node per shard: found with Metadata
through tests/adversity/wire.py).  Message sets come from kafka-python's legacy builder.  What
the broker stored is then read by confluent-kafka (librdkafka, Fetch v4+ with v2 batches) and
from the segment files.  kcat (Debian's librdkafka 2.0.2) only compresses when the Produce
range includes v0, so it is the client this support exists for.
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any

import pytest
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from pyk import _native, protocol
from pyk.errors import ErrorCode
from pyk.protocol import ApiKey
from tests.adversity.wire import WireClient
from tests.helpers import (
    KCAT,
    BrokerProcess,
    Rec,
    confluent_consumer,
    create_topic,
    find_coordinator_v0,
    kcat_produce,
    read_batches,
    segment_files,
    unique_topic,
)

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3}
N = 12


def records(n: int, tag: str, ts: int | None) -> list[tuple[bytes | None, bytes | None, int | None]]:
    """Keys, values (a null key and a null value among them) and timestamps to send."""
    out: list[tuple[bytes | None, bytes | None, int | None]] = []
    for i in range(n):
        key = None if i == 3 else f"{tag}-key-{i}".encode()
        value = None if i == 5 else f"{tag} value {i} ".encode() * 8
        out.append((key, value, None if ts is None else ts + i))
    return out


def message_set(magic: int, codec: int, recs: list[tuple[bytes | None, bytes | None, int | None]]) -> bytes:
    builder = LegacyRecordBatchBuilder(magic, codec, 1 << 20)
    for i, (key, value, ts) in enumerate(recs):
        assert builder.append(i, ts, key, value) is not None
    return bytes(builder.build())


def wrapper(codec: int, inner: bytes) -> bytes:
    """A magic 1 message whose value is `inner` compressed with codec (any inner content)."""
    body = struct.pack(">bbqi", 1, codec, int(time.time() * 1000), -1)
    value = _native.compress(codec, inner)
    body += struct.pack(">i", len(value)) + value
    body = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", 0, len(body)) + body


def produce(bootstrap: str, topic: str, version: int, data: bytes, partition: int = 0,
            acks: int = -1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sends one Produce request of `version` to the partition's leader; (partition answer, body)."""
    body = {"acks": acks, "timeout_ms": 10_000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": data}]}]}
    with WireClient(bootstrap) as seed:
        leader = seed.leader(topic, partition)
        leader.send_raw(protocol.encode_request(ApiKey.PRODUCE, version, 77, "pyk-legacy-test", body))
        correlation_id, response = protocol.decode_response(ApiKey.PRODUCE, version, leader.recv_frame())
    assert correlation_id == 77
    [topic_answer] = response["responses"]
    assert topic_answer["name"] == topic
    [answer] = topic_answer["partition_responses"]
    assert answer["index"] == partition
    return answer, response


def consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[tuple[Rec, int]]:
    """(record, timestamp type) of `count` records from offset 0, read by confluent-kafka."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    c = confluent_consumer(bootstrap)
    out: list[tuple[Rec, int]] = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(num_messages=count - len(out), timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                ts_type, ts = m.timestamp()
                out.append((Rec(m.key(), m.value(), (), ts, m.partition(), m.offset()), ts_type))
    finally:
        c.close()
    return out


def stored_batches(broker: Any, topic: str) -> list[Any]:
    if not isinstance(broker, BrokerProcess):
        pytest.skip("needs the broker's log directory")
    return [b for f in segment_files(broker.partition_dir(topic, 0)) for b in read_batches(f)]


def test_api_versions_advertise_produce_v0(broker) -> None:
    with WireClient(broker.bootstrap) as client:
        assert client.api_versions()[ApiKey.PRODUCE] == (0, 9)


# Kafka pairs each legacy Produce version with a message format: v0/v1 carry magic 0, v2 magic 1
# (KIP-32).  Both magics are also sent at v2, which Kafka accepts as well.
CASES = [(0, 0), (1, 0), (2, 0), (2, 1)]


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize(("version", "magic"), CASES)
def test_legacy_produce_is_stored_as_v2(broker, version: int, magic: int, codec: str) -> None:
    from confluent_kafka import TIMESTAMP_CREATE_TIME

    topic = unique_topic(f"legacy-v{version}-m{magic}-{codec}")
    create_topic(broker.bootstrap, topic)
    now = int(time.time() * 1000)
    first, second = records(N, "a", now - 1000), records(N, "b", now - 500)
    offsets = []
    for recs in (first, second):
        answer, body = produce(broker.bootstrap, topic, version, message_set(magic, CODECS[codec], recs))
        assert answer["error_code"] == ErrorCode.NONE, answer
        offsets.append(answer["base_offset"])
        if version >= 1:
            assert body["throttle_time_ms"] == 0
        if version >= 2:
            assert answer["log_append_time_ms"] == -1  # CreateTime topic
    assert offsets == [0, N]

    got = consume(broker.bootstrap, topic, 2 * N)
    sent = first + second
    assert [r.offset for r, _ in got] == list(range(2 * N))
    assert [(r.key, r.value) for r, _ in got] == [(k, v) for k, v, _ in sent]
    # Magic 0 has no timestamps: stored as -1 under CreateTime, as Kafka up-converts them.
    assert [r.timestamp for r, _ in got] == [ts if magic == 1 else -1 for _, _, ts in sent]
    if magic == 1:
        assert {t for _, t in got} == {TIMESTAMP_CREATE_TIME}

    batches = stored_batches(broker, topic)
    assert [(b.base_offset, b.last_offset, b.magic, b.codec) for b in batches] == [
        (0, N - 1, 2, CODECS[codec]), (N, 2 * N - 1, 2, CODECS[codec])]


@pytest.mark.parametrize(("version", "magic"), [(0, 0), (2, 1)])
def test_log_append_time_topic(broker, version: int, magic: int) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    topic = unique_topic(f"legacy-lat-v{version}")
    create_topic(broker.bootstrap, topic, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    answer, _ = produce(broker.bootstrap, topic, version, message_set(magic, 1, records(N, "t", before - 86_400_000)))
    after = int(time.time() * 1000)
    assert answer["error_code"] == ErrorCode.NONE and answer["base_offset"] == 0
    got = consume(broker.bootstrap, topic, N)
    assert len(got) == N
    stamped = {r.timestamp for r, _ in got}
    assert len(stamped) == 1 and before <= stamped.pop() <= after
    assert {t for _, t in got} == {TIMESTAMP_LOG_APPEND_TIME}
    if version >= 2:
        assert answer["log_append_time_ms"] == got[0][0].timestamp


def test_acks_zero_gets_no_answer_but_is_stored(broker) -> None:
    topic = unique_topic("legacy-acks0")
    create_topic(broker.bootstrap, topic)
    body = {"acks": 0, "timeout_ms": 1000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": message_set(0, 2, records(3, "z", None))}]}]}
    with WireClient(broker.bootstrap) as seed:
        leader = seed.leader(topic, 0)
        leader.send_raw(protocol.encode_request(ApiKey.PRODUCE, 0, 5, "pyk-legacy-test", body))
        # The next request on the connection is answered first: nothing came back for acks=0.
        answer, _ = produce(broker.bootstrap, topic, 1, message_set(0, 0, records(2, "y", None)))
    assert answer["base_offset"] == 3
    assert [r.value for r, _ in consume(broker.bootstrap, topic, 5)][3:] == [v for _, v, _ in records(2, "y", None)]


def test_errors_are_per_partition_and_store_nothing(broker) -> None:
    topic = unique_topic("legacy-errors")
    create_topic(broker.bootstrap, topic)
    good = message_set(1, 0, records(2, "g", int(time.time() * 1000)))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    answer, _ = produce(broker.bootstrap, topic, 2, bytes(bad_crc))
    assert (answer["error_code"], answer["base_offset"]) == (ErrorCode.CORRUPT_MESSAGE, -1)
    answer, _ = produce(broker.bootstrap, topic, 0, good[:-3])  # truncated
    assert answer["error_code"] == ErrorCode.CORRUPT_MESSAGE
    # A compressed wrapper inside a compressed wrapper.
    inner = message_set(1, 1, records(2, "n", int(time.time() * 1000)))
    answer, _ = produce(broker.bootstrap, topic, 2, wrapper(2, inner))
    assert answer["error_code"] == ErrorCode.CORRUPT_MESSAGE
    # Nothing was stored: the next good request starts at offset 0.
    answer, _ = produce(broker.bootstrap, topic, 2, good)
    assert (answer["error_code"], answer["base_offset"]) == (ErrorCode.NONE, 0)


def test_oversize_after_conversion(broker) -> None:
    topic = unique_topic("legacy-large")
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": "4000", "compression.type": "uncompressed"})
    # 20 KB of zeros gzip to well under 4000 bytes, but the topic stores them uncompressed.
    data = message_set(1, 1, [(None, bytes(20_000), int(time.time() * 1000))])
    assert len(data) < 4000
    answer, _ = produce(broker.bootstrap, topic, 2, data)
    assert answer["error_code"] == ErrorCode.MESSAGE_TOO_LARGE


@pytest.mark.parametrize(("api_version", "magic"), [((0, 9), 0), ((0, 10, 0), 1)])
def test_kafka_python_with_an_old_api_version(broker, api_version: tuple[int, ...], magic: int) -> None:
    """kafka-python told the broker is 0.9 / 0.10 produces with Produce v1 / v2 and magic 0 / 1."""
    from kafka import KafkaProducer

    topic = unique_topic(f"legacy-kp-m{magic}")
    create_topic(broker.bootstrap, topic)
    now = int(time.time() * 1000)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version, compression_type="gzip",
                      linger_ms=5)
    try:
        futures = [p.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0, timestamp_ms=now + i)
                   for i in range(N)]
        p.flush(20)
        metadata = [f.get(timeout=20) for f in futures]
    finally:
        p.close(timeout=5)
    assert [m.offset for m in metadata] == list(range(N))
    got = consume(broker.bootstrap, topic, N)
    assert [(r.key, r.value) for r, _ in got] == [(b"k%d" % i, b"v%d" % i) for i in range(N)]
    assert [r.timestamp for r, _ in got] == [now + i if magic else -1 for i in range(N)]
    assert {b.codec for b in stored_batches(broker, topic)} == {1}


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed")
@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4"])
def test_kcat_compresses(broker, codec: str) -> None:
    """Debian's kcat (librdkafka 2.0.2) sends compressed batches and they are stored compressed.

    librdkafka infers gzip/snappy support from Produce v0 being advertised and lz4 from
    FindCoordinator v0 as well (rdkafka_feature.c)."""
    if codec == "lz4" and not find_coordinator_v0(broker):
        pytest.skip("librdkafka's LZ4 feature also needs FindCoordinator v0 (consumer groups)")
    topic = unique_topic(f"legacy-kcat-{codec}")
    create_topic(broker.bootstrap, topic)
    sent = [Rec(f"k{i}".encode(), f"{codec} line {i} ".encode() * 10) for i in range(N)]
    log = kcat_produce(broker.bootstrap, topic, sent, "-z", codec, "-d", "msg")
    assert "not compressing batch" not in log, log
    assert [(r.key, r.value) for r, _ in consume(broker.bootstrap, topic, N)] == [(r.key, r.value) for r in sent]
    batches = stored_batches(broker, topic)
    assert {b.codec for b in batches} == {CODECS[codec]}
    assert sum(b.record_count for b in batches) == N
