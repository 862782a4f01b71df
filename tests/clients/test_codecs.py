"""Every codec produced by one client and read by every other, and the codec kept or set on disk.

The matrix produces once per (producer, codec) in a module fixture, then each (producer, codec,
consumer) test only consumes: that keeps 80 cases to a few seconds of client start-ups.  The
stored codec is read from the batch headers in the segment file, so "compression.type=producer
keeps the client's codec" and "a codec name recompresses" are checked on the bytes themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from tests.helpers import (
    CODEC_IDS,
    CONSUMERS,
    BrokerProcess,
    Rec,
    aiokafka_produce,
    confluent_produce,
    create_topic,
    find_coordinator_v0,
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


# librdkafka decides per broker whether it may compress (rdkafka_msgset_writer.c, `compr_req`): lz4
# needs its LZ4 feature, which it infers from FindCoordinator v0 being advertised; librdkafka <= 2.11
# (kcat on Debian's 2.0.2) also needs Produce v0 inside the advertised Produce range for gzip, snappy
# and lz4.  Otherwise it sends the batch uncompressed and only says so in its `msg` debug log.
DOWNGRADE_LOG = "not compressing batch"


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _produce(bootstrap: str, producer: str, codec: str, topic: str, recs: list[Rec]) -> str:
    """Produces with the client's codec setting; returns librdkafka's msg-level log (empty for others)."""
    if producer == "confluent":
        capture = _LogCapture()
        logger = logging.getLogger(f"pyk-tests.rdkafka.{topic}")
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        conf = {"compression.type": codec, "linger.ms": 20, "debug": "msg", "logger": logger}
        confluent_produce(bootstrap, topic, recs, **conf)
        logger.removeHandler(capture)
        return "\n".join(capture.lines)
    if producer == "kafka-python":
        kafka_python_produce(bootstrap, topic, recs, compression_type=None if codec == "none" else codec)
        return ""
    if producer == "aiokafka":
        aiokafka_produce(bootstrap, topic, recs, compression_type=None if codec == "none" else codec)
        return ""
    return kcat_produce(bootstrap, topic, recs, "-z", codec, "-d", "msg")


@dataclass
class Produced:
    topic: str
    records: list[Rec]
    error: Exception | None = None
    client_log: str = ""

    @property
    def sent_uncompressed(self) -> bool:
        """librdkafka chose not to compress (it logs why); the batches on the wire had no codec."""
        return DOWNGRADE_LOG in self.client_log


@pytest.fixture(scope="module")
def produced(broker) -> dict[tuple[str, str], Produced]:
    """(producer, codec) -> what was produced on its own topic, or the error that prevented it."""
    out: dict[tuple[str, str], Produced] = {}
    for producer in PRODUCERS:
        for codec in CODECS:
            item = Produced(unique_topic(f"codec-{producer}-{codec}"), _records(producer, codec))
            try:
                create_topic(broker.bootstrap, item.topic)
                item.client_log = _produce(broker.bootstrap, producer, codec, item.topic, item.records)
            except Exception as exc:  # reported by every test of this pair, with the cause
                item.error = exc
            out[producer, codec] = item
    return out


def _topic_for(produced: dict[tuple[str, str], Produced], producer: str, codec: str) -> tuple[str, list[Rec]]:
    item = produced[producer, codec]
    if item.error is not None:
        pytest.fail(f"{producer} could not produce with {codec}: {item.error!r}")
    return item.topic, item.records


@pytest.mark.parametrize("consumer", list(CONSUMERS))
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_codec_matrix(broker, produced, producer, codec, consumer):
    topic, sent = _topic_for(produced, producer, codec)
    got = CONSUMERS[consumer](broker.bootstrap, topic, 0, 0, N)
    assert [r.offset for r in got] == list(range(N)), f"{consumer} reading {producer}/{codec}"
    assert [r.content() for r in got] == [r.content() for r in sent], f"{consumer} reading {producer}/{codec}"


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_stored_codec_is_the_producers(broker, produced, producer, codec):
    """compression.type=producer (the default): batches are stored with the codec they arrived with."""
    if not isinstance(broker, BrokerProcess):
        pytest.skip("needs the broker's log directory")
    topic, _ = _topic_for(produced, producer, codec)
    on_the_wire = "none" if produced[producer, codec].sent_uncompressed else codec
    batches = [b for f in segment_files(broker.partition_dir(topic, 0)) for b in read_batches(f)]
    assert sum(b.record_count for b in batches) == N
    assert {b.codec for b in batches} == {CODEC_IDS[on_the_wire]}, f"{producer} sent {on_the_wire}"
    assert [b.base_offset for b in batches] == sorted(b.base_offset for b in batches)
    assert batches[0].base_offset == 0 and batches[-1].last_offset == N - 1


@pytest.mark.parametrize("codec", [c for c in CODECS if c != "none"])
@pytest.mark.parametrize("producer", ["confluent", "kcat"])
def test_librdkafka_compresses_against_pyk(broker, produced, producer, codec):
    """librdkafka really compresses: it does not conclude from pyk's ApiVersions that the codec is
    unsupported (see DOWNGRADE_LOG above for the rules it applies)."""
    if codec == "lz4" and not find_coordinator_v0(broker):
        pytest.skip("librdkafka's LZ4 feature also needs FindCoordinator v0 (consumer groups)")
    _topic_for(produced, producer, codec)
    log = produced[producer, codec].client_log
    said = next((line for line in log.splitlines() if DOWNGRADE_LOG in line), "")
    assert not said, (
        f"{producer} sent {codec} batches uncompressed: {said.strip()!r}. librdkafka requires FindCoordinator v0 "
        "to be advertised for lz4, and (<= 2.11, e.g. kcat on Debian's 2.0.2) Produce v0 within the advertised "
        "Produce range for gzip/snappy/lz4 (rdkafka_msgset_writer.c compr_req)"
    )


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
