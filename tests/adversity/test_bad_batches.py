"""Produce requests with bad record batches get Kafka error codes, append nothing, and harm nobody.

Checked by log end offset (ListOffsets latest) before and after each bad request, and by a real
client reading exactly the good records at the end.  Also the idempotent-producer sequence rules
on the wire: a duplicate batch is answered with the original offset, a sequence gap is refused.
"""

from __future__ import annotations

import pytest

from tests.adversity.wire import WireClient, record_batch
from tests.helpers import confluent_consume, confluent_produce, create_topic, make_records, wait_for
from tests.ref.bombs import BOMBS, zstd_bomb

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_RECORD = 87
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43


@pytest.fixture
def wire(broker):
    with WireClient(broker.bootstrap) as w:
        yield w


def _leo(w: WireClient, topic: str) -> int:
    error_code, offset = w.list_offset(topic, 0, -1)
    assert error_code == 0
    return offset


def _good(i: int) -> bytes:
    return record_batch([(b"good-%d" % i, b"value-%d" % i)])


def test_wrong_crc_is_corrupt_message(broker, wire, topic):
    create_topic(broker.bootstrap, topic)
    assert wire.produce(topic, 0, _good(0)).base_offset == 0
    bad = wire.produce(topic, 0, record_batch([(b"k", b"v")] * 3, bad_crc=True))
    assert bad.error_code == CORRUPT_MESSAGE
    assert _leo(wire, topic) == 1
    # Flip one byte of a record after the CRC was computed: same outcome.
    batch = bytearray(record_batch([(b"key", b"some value bytes")]))
    batch[-5] ^= 0x01
    assert wire.produce(topic, 0, bytes(batch)).error_code == CORRUPT_MESSAGE
    assert _leo(wire, topic) == 1
    # The connection is still usable and offsets continue without a gap.
    assert wire.produce(topic, 0, _good(1)).base_offset == 1
    got = confluent_consume(broker.bootstrap, topic, 0, 0, 2)
    assert [(r.offset, r.key) for r in got] == [(0, b"good-0"), (1, b"good-1")]


@pytest.mark.parametrize("length_delta", [-3, 5, 1000], ids=["short", "long", "much-longer"])
def test_batch_length_disagrees_with_bytes(broker, wire, topic, length_delta):
    create_topic(broker.bootstrap, topic)
    assert wire.produce(topic, 0, _good(0)).error_code == 0
    result = wire.produce(topic, 0, record_batch([(b"k", b"v")], length_delta=length_delta))
    assert result.error_code in (CORRUPT_MESSAGE, INVALID_RECORD)
    assert _leo(wire, topic) == 1
    assert wire.produce(topic, 0, _good(1)).base_offset == 1


def test_old_magic_refused(broker, wire, topic):
    """Produce v3+ carries magic v2 batches only; a magic 1 header is refused, not stored."""
    create_topic(broker.bootstrap, topic)
    result = wire.produce(topic, 0, record_batch([(b"k", b"v")], magic=1))
    assert result.error_code in (CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT)
    assert _leo(wire, topic) == 0


def test_oversize_record_is_message_too_large(broker, wire, topic):
    """Over message.max.bytes (default 1048588) -> MESSAGE_TOO_LARGE; over a topic's max.message.bytes too."""
    create_topic(broker.bootstrap, topic)
    assert wire.produce(topic, 0, _good(0)).error_code == 0
    assert wire.produce(topic, 0, record_batch([(b"big", b"x" * 1_100_000)])).error_code == MESSAGE_TOO_LARGE
    assert _leo(wire, topic) == 1

    small = topic + "-small"
    create_topic(broker.bootstrap, small, config={"max.message.bytes": "1000"})
    assert wire.produce(small, 0, record_batch([(b"k", b"x" * 500)])).error_code == 0
    assert wire.produce(small, 0, record_batch([(b"k", b"x" * 2000)])).error_code == MESSAGE_TOO_LARGE
    assert _leo(wire, small) == 1

    # Real clients are unaffected.
    sent = make_records(5)
    assert confluent_produce(broker.bootstrap, topic, sent) == [(0, i) for i in range(1, 6)]
    assert [r.value for r in confluent_consume(broker.bootstrap, topic, 0, 1, 5)] == [r.value for r in sent]


def test_unknown_topic_and_partition(broker, wire, topic):
    """Produce never auto-creates (only Metadata does): UNKNOWN_TOPIC_OR_PARTITION, and no topic appears."""
    assert wire.produce(topic, 0, _good(0)).error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert wire.list_offset(topic, 0, -1)[0] == UNKNOWN_TOPIC_OR_PARTITION
    create_topic(broker.bootstrap, topic, partitions=2)
    assert wire.produce(topic, 2, _good(0)).error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert wire.produce(topic, 1, _good(0)).error_code == 0


def test_idempotent_sequences_on_the_wire(broker, wire, topic):
    """Duplicate batch -> original offset, nothing appended; sequence gap -> OUT_OF_ORDER_SEQUENCE_NUMBER."""
    create_topic(broker.bootstrap, topic)
    error_code, pid, epoch = wire.init_producer_id()
    assert error_code == 0 and pid >= 0 and epoch >= 0

    def batch(seq: int, n: int = 3) -> bytes:
        recs = [(b"s%d" % (seq + i), b"v") for i in range(n)]
        return record_batch(recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq)

    first = wire.produce(topic, 0, batch(0))
    assert (first.error_code, first.base_offset) == (0, 0)
    dup = wire.produce(topic, 0, batch(0))
    assert (dup.error_code, dup.base_offset) == (0, 0)
    assert _leo(wire, topic) == 3
    second = wire.produce(topic, 0, batch(3))
    assert (second.error_code, second.base_offset) == (0, 3)
    # The first batch again, now not the latest: still recognised (Kafka keeps the last 5 per producer).
    assert wire.produce(topic, 0, batch(0)).base_offset == 0
    gap = wire.produce(topic, 0, batch(10))
    assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert _leo(wire, topic) == 6
    # The expected next sequence still works after the refusal.
    assert wire.produce(topic, 0, batch(6)).base_offset == 6
    got = confluent_consume(broker.bootstrap, topic, 0, 0, 9)
    assert [r.key for r in got] == [b"s%d" % i for i in range(9)]


@pytest.mark.parametrize("codec", [1, 2, 3, 4], ids=["gzip", "snappy", "lz4", "zstd"])
def test_compressed_payload_that_does_not_decompress_is_corrupt_message(broker, wire, topic, codec):
    """The CRC covers the bytes, not their meaning: a compressed records section that does not
    decompress is refused (Kafka decompresses every produced batch) rather than acknowledged
    and then served to consumers that cannot read it."""
    create_topic(broker.bootstrap, topic)
    good = record_batch([(b"k%d" % i, b"v" * 50) for i in range(5)], codec=codec)
    assert wire.produce(topic, 0, good).base_offset == 0
    garbage = record_batch([(b"k", b"v")] * 5, codec=codec, records_section=b"\x00\x01\x02garbage" * 20)
    assert wire.produce(topic, 0, garbage).error_code == CORRUPT_MESSAGE
    assert _leo(wire, topic) == 5
    assert [r.key for r in confluent_consume(broker.bootstrap, topic, 0, 0, 5)] == [b"k%d" % i for i in range(5)]


def test_decompression_bomb_is_refused_without_inflating(broker, wire, topic):
    """32 KiB of zstd (a frame without content size) that expands to 1 GiB of records, under a
    correct CRC: CORRUPT_MESSAGE once the output passes message.decompressed.max.bytes (default
    100 MiB), one log line, and the broker keeps serving."""
    create_topic(broker.bootstrap, topic)
    bomb = zstd_bomb(1 << 30)
    assert len(bomb) < 64 * 1024
    bad = wire.produce(topic, 0, record_batch([(b"k", b"v")], codec=4, records_section=bomb))
    assert bad.error_code == CORRUPT_MESSAGE
    wait_for(lambda: "message.decompressed.max.bytes=104857600" in broker.log_text(), what="the refusal's log line")
    assert wire.produce(topic, 0, _good(0)).base_offset == 0
    assert _leo(wire, topic) == 1


def test_decompression_bound_is_configurable_for_every_codec(broker_factory, topic):
    """With message.decompressed.max.bytes=8 MiB, a 64 MiB bomb of each codec (16 MiB for
    snappy's xerial framing, whose ratio would make a bigger one pass message.max.bytes) is
    CORRUPT_MESSAGE and appends nothing, while a real client's compressed batches below the bound
    are stored."""
    b = broker_factory(overrides={"message.decompressed.max.bytes": 8 << 20})
    create_topic(b.bootstrap, topic)
    with WireClient(b.bootstrap) as w:
        for name, (codec, build) in BOMBS.items():
            section = build((16 if name == "snappy-xerial" else 64) << 20)
            bad = w.produce(topic, 0, record_batch([(b"k", b"v")], codec=codec, records_section=section))
            assert bad.error_code == CORRUPT_MESSAGE, name
            assert _leo(w, topic) == 0, name
        wait_for(lambda: "message.decompressed.max.bytes=8388608" in b.log_text(), what="the refusal's log line")
        confluent_produce(b.bootstrap, topic, make_records(50, value_size=50_000), **{"compression.type": "zstd"})
        assert _leo(w, topic) == 50
