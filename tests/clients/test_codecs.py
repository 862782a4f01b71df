"""Every codec produced by one client and read by every other, and the codec kept or set on disk.

The matrix produces once per (producer, codec) in a module fixture, then each (producer, codec,
consumer) test only consumes: that keeps 80 cases to a few seconds of client start-ups.  The
stored codec is read from the batch headers in the segment file, so "compression.type=producer
keeps the client's codec" and "a codec name recompresses" are checked on the bytes themselves.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    CODEC_IDS,
    CONSUMERS,
    BrokerProcess,
    Rec,
    aiokafka_produce,
    confluent_produce,
    create_topic,
    kafka_python_produce,
    kcat_produce,
    read_batches,
    segment_files,
    unique_topic,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PRODUCERS = ["confluent", "kafka-python", "aiokafka", "kcat"]
N = 40


def _records(producer: str, codec: str) -> list[Rec]:
    # Text only (kcat reads and writes lines) with one header set for all records (kcat's -H applies to
    # all); values long and repetitive so every codec actually shrinks them (librdkafka sends a batch
    # uncompressed when compression would not help).
    pad = "abcdefgh" * 24
    return [
        Rec(f"{producer}-{i}".encode(), f"{codec} value {i} {pad}".encode(), (("codec", codec.encode()),))
        for i in range(N)
    ]


def _produce(bootstrap: str, producer: str, codec: str, topic: str, recs: list[Rec]) -> None:
    if producer == "confluent":
        confluent_produce(bootstrap, topic, recs, **{"compression.type": codec, "linger.ms": 20})
    elif producer == "kafka-python":
        kafka_python_produce(bootstrap, topic, recs, compression_type=None if codec == "none" else codec)
    elif producer == "aiokafka":
        aiokafka_produce(bootstrap, topic, recs, compression_type=None if codec == "none" else codec)
    else:
        kcat_produce(bootstrap, topic, recs, "-z", codec)


@pytest.fixture(scope="module")
def produced(broker) -> dict[tuple[str, str], tuple[str, list[Rec], Exception | None]]:
    """(producer, codec) -> (topic, records sent, the produce error if any)."""
    out: dict[tuple[str, str], Any] = {}
    for producer in PRODUCERS:
        for codec in CODECS:
            topic = unique_topic(f"codec-{producer}-{codec}")
            recs = _records(producer, codec)
            try:
                create_topic(broker.bootstrap, topic)
                _produce(broker.bootstrap, producer, codec, topic, recs)
                out[producer, codec] = (topic, recs, None)
            except Exception as exc:  # reported by every test of this pair, with the cause
                out[producer, codec] = (topic, recs, exc)
    return out


def _topic_for(produced: Any, producer: str, codec: str) -> tuple[str, list[Rec]]:
    topic, recs, error = produced[producer, codec]
    if error is not None:
        pytest.fail(f"{producer} could not produce with {codec}: {error!r}")
    return topic, recs


@pytest.mark.parametrize("consumer", list(CONSUMERS))
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_codec_matrix(broker, produced, producer, codec, consumer):
    topic, sent = _topic_for(produced, producer, codec)
    got = CONSUMERS[consumer](broker.bootstrap, topic, 0, 0, N)
    assert [r.offset for r in got] == list(range(N)), f"{consumer} reading {producer}/{codec}"
    assert [r.content() for r in got] == [r.content() for r in sent], f"{consumer} reading {producer}/{codec}"


# librdkafka decides per broker whether it may compress (rdkafka_msgset_writer.c, compr_req): lz4
# needs the LZ4 feature, which it infers from FindCoordinator v0 being advertised; and librdkafka
# <= 2.11 (kcat on Debian's 2.0.2) also asks that Produce v0 be supported for gzip, snappy and lz4.
# When it concludes "not supported" it sends the batch uncompressed without telling the caller.
_LIBRDKAFKA_HINT = (
    "librdkafka sends uncompressed when it believes the broker cannot take the codec: lz4 needs "
    "FindCoordinator v0 advertised; librdkafka <= 2.11 (kcat) needs Produce v0 in the advertised "
    "range for gzip/snappy/lz4 (rdkafka_msgset_writer.c compr_req)"
)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_stored_codec_is_the_producers(broker, produced, producer, codec):
    """compression.type=producer (the default): batches are stored with the codec the client asked for."""
    if not isinstance(broker, BrokerProcess):
        pytest.skip("needs the broker's log directory")
    topic, _ = _topic_for(produced, producer, codec)
    batches = [b for f in segment_files(broker.partition_dir(topic, 0)) for b in read_batches(f)]
    assert sum(b.record_count for b in batches) == N
    hint = f" ({_LIBRDKAFKA_HINT})" if producer in ("confluent", "kcat") else ""
    assert {b.codec for b in batches} == {CODEC_IDS[codec]}, f"{producer} asked for {codec}{hint}"
    assert [b.base_offset for b in batches] == sorted(b.base_offset for b in batches)
    assert batches[0].base_offset == 0 and batches[-1].last_offset == N - 1


@pytest.mark.parametrize(
    "topic_codec, producer_codec",
    [("zstd", "none"), ("gzip", "snappy"), ("uncompressed", "lz4"), ("lz4", "lz4")],
)
def test_topic_compression_type_recompresses(broker, topic_codec, producer_codec):
    """A topic with compression.type=<codec> stores that codec whatever the producer sent."""
    topic = unique_topic(f"recompress-{topic_codec}-{producer_codec}")
    create_topic(broker.bootstrap, topic, config={"compression.type": topic_codec})
    sent = _records("confluent", producer_codec)
    acked = confluent_produce(
        broker.bootstrap, topic, sent, **{"compression.type": producer_codec, "linger.ms": 20}
    )
    assert acked == [(0, i) for i in range(N)]
    for consumer in CONSUMERS:
        got = CONSUMERS[consumer](broker.bootstrap, topic, 0, 0, N)
        assert [r.offset for r in got] == list(range(N)), consumer
        assert [r.content() for r in got] == [r.content() for r in sent], consumer
    if isinstance(broker, BrokerProcess):
        batches = [b for f in segment_files(broker.partition_dir(topic, 0)) for b in read_batches(f)]
        assert {b.codec for b in batches} == {CODEC_IDS[topic_codec]}
        assert sum(b.record_count for b in batches) == N
