"""The Java producer and consumer (kafka-clients 4.1) against `pyk serve`.

One JVM runs every scenario of tests/java/src/clients/ClientScenarios.java (each on its own topics) and
prints one JSON line each; the tests below check what the Java client saw, and what pyk stored
and serves to another client (librdkafka) from what the Java producer sent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    CODEC_IDS,
    BrokerProcess,
    ExternalBroker,
    confluent_read_to_end,
    read_batches,
    segment_files,
)
from tests.java.scenarios import ok, run_scenarios

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture(scope="module")
def results(broker: BrokerProcess | ExternalBroker, java_classes: Path) -> dict[str, dict[str, Any]]:
    return run_scenarios(java_classes, "clients.ClientScenarios", broker.bootstrap, "java-client")


@pytest.mark.parametrize("codec", CODECS)
def test_codec_round_trip(broker: BrokerProcess | ExternalBroker, results: dict[str, dict[str, Any]],
                          codec: str) -> None:
    r = ok(results, f"codec-{codec}")
    assert r["offsets"] == list(range(300))
    assert r["consumed_offsets"] == list(range(300))
    assert r["values"] == [f"value-{i}" for i in range(300)]
    # librdkafka reads what the Java producer compressed.
    got = confluent_read_to_end(broker.bootstrap, r["topic"])
    assert [rec.key for rec in got] == [b"k%d" % i for i in range(300)]
    assert [rec.value for rec in got] == [(b"value-%d-" % i) * 20 for i in range(300)]
    if isinstance(broker, BrokerProcess):  # stored as sent: batches of the producer's codec
        [log] = segment_files(broker.partition_dir(r["topic"], 0))
        batches = read_batches(log)
        assert {b.codec for b in batches} == {CODEC_IDS[codec]}
        assert len(batches) < 300  # batched by linger.ms


def test_broker_recompression(broker: BrokerProcess | ExternalBroker, results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "broker-recompression")
    assert r["values"] == [f"k{i}=recompressed-{i}" for i in range(100)]
    if isinstance(broker, BrokerProcess):  # stored in the topic's codec, not the producer's
        [log] = segment_files(broker.partition_dir(r["topic"], 0))
        assert {b.codec for b in read_batches(log)} == {CODEC_IDS["lz4"]}


def test_acks_zero_and_one(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "acks-0-and-1")
    # acks=0: no response, so the client reports offset -1; acks=1: the log's offsets.
    assert r["acked"] == [-1] * 50 + list(range(50, 100))
    assert r["values"] == [f"zero-{i}" for i in range(50)] + [f"one-{i}" for i in range(50)]
    assert r["offsets"] == list(range(100))


def test_idempotent_acks_all(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "idempotent-acks-all")
    assert r["offsets"] == {str(p): list(range(1000)) for p in range(3)}
    assert r["values"] == {str(p): [f"v{i}" for i in range(p, 3000, 3)] for p in range(3)}


def test_headers(broker: BrokerProcess | ExternalBroker, results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "headers")
    assert r["records"] == [
        {"value": "with", "headers": [["trace", "abc"], ["dup", "1"], ["dup", "2"], ["nothing", None],
                                      ["empty", ""], ["clé", "välue"]]},
        {"value": "without", "headers": []},
    ]
    [with_headers, _] = confluent_read_to_end(broker.bootstrap, r["topic"])
    assert with_headers.headers == (("trace", b"abc"), ("dup", b"1"), ("dup", b"2"), ("nothing", b""),
                                    ("empty", b""), ("clé", "välue".encode()))


def test_create_time(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "create-time")
    assert r["acked"] == r["sent"]
    assert r["consumed"] == [[ts, "CreateTime"] for ts in r["sent"]]


def test_log_append_time(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "log-append-time")
    assert all(r["before"] - 1000 <= ts <= r["after"] + 1000 for ts in r["acked"]), r
    assert r["consumed"] == [[ts, "LogAppendTime"] for ts in r["acked"]]


def test_large_messages(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "large-messages")
    assert r["consumed"] == r["sent"]
    assert len(r["sent"]) == 3
    assert r["too_large"] == "RecordTooLargeException"


def test_seek_and_offsets_for_times(results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "seek-offsets-for-times")
    assert r["offsets_for_times"] == {"-1": [0, 0], "3500": [4, 4000], "9000": [9, 9000], "20000": None}
    assert (r["beginning"], r["end"], r["position_at_end"]) == (0, 10, 10)
    assert r["seek_reads"] == [[7, "r7"], [2, "r2"], [9, "r9"]]


def test_large_values_read_by_librdkafka(broker: BrokerProcess | ExternalBroker,
                                         results: dict[str, dict[str, Any]]) -> None:
    r = ok(results, "large-messages")
    got = confluent_read_to_end(broker.bootstrap, r["topic"], **{"fetch.message.max.bytes": 1 << 20})
    assert [hashlib.sha256(rec.value or b"").hexdigest() for rec in got] == r["sent"]


def test_out_of_range_position(results: dict[str, dict[str, Any]]) -> None:
    """Below the log start offset (after deleteRecords) or past the end: OFFSET_OUT_OF_RANGE, which
    auto.offset.reset=earliest answers with the log start and "none" reports to the application."""
    r = ok(results, "out-of-range")
    assert r["earliest"] == [6, "o6"]
    assert r["none"] == "OffsetOutOfRangeException"
    assert r["beyond_end"] == "OffsetOutOfRangeException"
