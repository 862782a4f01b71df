"""Produce/consume round trips with each real client: keys, headers, timestamps, null values, 1 MiB values.

Every test checks what came back against what was sent: content, offsets (contiguous from 0) and
producer timestamps (CreateTime), not only that no exception was raised.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import (
    CONSUMERS,
    PRODUCERS,
    ClientError,
    Rec,
    confluent_consume,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    kcat,
    kcat_consume,
    kcat_produce,
    make_records,
)

PY_CLIENTS = ["confluent", "kafka-python", "aiokafka"]
MIB = 1024 * 1024


def _sample(ts0: int) -> list[Rec]:
    """Keys and headers, a tombstone (null value), a null key, binary bytes, explicit timestamps."""
    recs = make_records(20, ts_base=ts0)
    recs.append(Rec(b"tombstone", None, (), ts0 + 20))
    recs.append(Rec(None, b"no key", (("empty", b""),), ts0 + 21))
    recs.append(Rec(bytes(range(256)), bytes(range(255, -1, -1)) * 4, (("bin", b"\x00\xff"),), ts0 + 22))
    return recs


@pytest.mark.parametrize("client", PY_CLIENTS)
def test_round_trip(broker, topic, client):
    """Same client both ways, on an auto-created topic."""
    ts0 = int(time.time() * 1000) - 60_000
    sent = _sample(ts0)
    acked = PRODUCERS[client](broker.bootstrap, topic, sent)
    assert acked == [(0, i) for i in range(len(sent))]
    got = CONSUMERS[client](broker.bootstrap, topic, 0, 0, len(sent))
    assert [r.offset for r in got] == list(range(len(sent)))
    assert [r.content() for r in got] == [r.content() for r in sent]
    assert [r.timestamp for r in got] == [r.timestamp for r in sent]


@pytest.mark.parametrize("consumer", ["kafka-python", "aiokafka", "kcat"])
def test_read_what_confluent_wrote(broker, topic, consumer):
    """Cross-client: librdkafka's batches read by the pure-Python clients and by kcat (Debian's librdkafka)."""
    ts0 = int(time.time() * 1000) - 30_000
    sent = make_records(30, ts_base=ts0)
    confluent_produce(broker.bootstrap, topic, sent)
    got = CONSUMERS[consumer](broker.bootstrap, topic, 0, 0, len(sent))
    assert [r.offset for r in got] == list(range(len(sent)))
    assert [r.content() for r in got] == [r.content() for r in sent]
    assert [r.timestamp for r in got] == [r.timestamp for r in sent]


def test_consume_from_middle_and_across_produce_calls(broker, topic):
    """Several produce calls make several batches; a fetch from inside a batch returns from that offset."""
    for i in range(3):
        confluent_produce(broker.bootstrap, topic, make_records(10, prefix=f"call{i}"))
    got = kafka_python_consume(broker.bootstrap, topic, 0, 15, 15)
    assert [r.offset for r in got] == list(range(15, 30))
    assert [r.value for r in got] == [f"call1-{i}".encode() for i in range(5, 10)] + [
        f"call2-{i}".encode() for i in range(10)
    ]


def test_kcat_produce_and_consume(broker, topic):
    """kcat -P with keys (-K) and headers (-H); kcat -C -o beginning -e reads it, and so does confluent."""
    sent = [
        Rec(f"key{i}".encode(), f"value number {i}".encode(), (("h1", b"one"), ("h2", b"two")))
        for i in range(25)
    ]
    kcat_produce(broker.bootstrap, topic, sent)
    got = kcat_consume(broker.bootstrap, topic, 0, 0, len(sent))
    assert [r.offset for r in got] == list(range(len(sent)))
    assert [r.content() for r in got] == [r.content() for r in sent]
    other = confluent_consume(broker.bootstrap, topic, 0, 0, len(sent))
    assert [r.content() for r in other] == [r.content() for r in sent]


def test_kcat_plain_format_beginning_to_end(broker, topic):
    """The README quick start: -o beginning -e with a -f format string."""
    kcat(["-b", broker.bootstrap, "-t", topic, "-P", "-K:"], stdin=b"k1:hello\nk2:world\n")
    out = kcat(
        ["-b", broker.bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%k %s @%o\n"]
    )
    assert out.stdout.decode().splitlines() == ["k1 hello @0", "k2 world @1"]


def test_kcat_metadata(broker, topic):
    """kcat -L: one node per shard, the topic's partitions spread over them, each partition's
    leader its only replica."""
    create_topic(broker.bootstrap, topic, partitions=3)
    md = json.loads(kcat(["-b", broker.bootstrap, "-L", "-J", "-t", topic]).stdout)
    host, port = broker.bootstrap.split(":")
    assert sorted((b["id"], b["name"]) for b in md["brokers"]) == [
        (1 + i, f"{host}:{int(port) + i}") for i in range(broker.shards)
    ], md["brokers"]
    (entry,) = [t for t in md["topics"] if t["topic"] == topic]
    assert sorted(p["partition"] for p in entry["partitions"]) == [0, 1, 2]
    leaders = set()
    for p in entry["partitions"]:
        leaders.add(p["leader"])
        assert [r["id"] for r in p["replicas"]] == [p["leader"]]
        assert [r["id"] for r in p["isrs"]] == [p["leader"]]
    assert len(leaders) == min(3, broker.shards), "partitions are spread over the shards"
    listing = json.loads(kcat(["-b", broker.bootstrap, "-L", "-J"]).stdout)
    assert topic in {t["topic"] for t in listing["topics"]}


# Large values ----------------------------------------------------------------------------------

_BIG_CONF = {
    "confluent": {"message.max.bytes": 4 * MIB},
    "kafka-python": {"max_request_size": 4 * MIB},
    "aiokafka": {"max_request_size": 4 * MIB},
}


def _big_records(n: int, tag: str) -> list[Rec]:
    # Incompressible-looking content so no codec could hide the size; each value exactly 1 MiB.
    return [
        Rec(
            f"{tag}-{i}".encode(),
            bytes((i * 7 + j * 13) % 251 for j in range(256)) * (MIB // 256),
            (("n", b"%d" % i),),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("producer", PY_CLIENTS)
def test_one_mib_values_topic_limit(broker, topic, producer):
    """1 MiB values on a topic whose max.message.bytes allows them; read back by every other client."""
    create_topic(broker.bootstrap, topic, config={"max.message.bytes": str(3 * MIB)})
    sent = _big_records(3, producer)
    acked = PRODUCERS[producer](broker.bootstrap, topic, sent, **_BIG_CONF[producer])
    assert acked == [(0, 0), (0, 1), (0, 2)]
    for consumer in PY_CLIENTS:
        got = CONSUMERS[consumer](broker.bootstrap, topic, 0, 0, 3)
        assert [r.offset for r in got] == [0, 1, 2], consumer
        assert [r.content() for r in got] == [r.content() for r in sent], consumer


def test_one_mib_values_broker_limit(broker_factory, topic):
    """message.max.bytes raised on the broker applies to auto-created topics."""
    b = broker_factory(message_max_bytes=3 * MIB)
    sent = _big_records(2, "broker")
    assert confluent_produce(b.bootstrap, topic, sent, **_BIG_CONF["confluent"]) == [(0, 0), (0, 1)]
    got = kafka_python_consume(b.bootstrap, topic, 0, 0, 2)
    assert [r.content() for r in got] == [r.content() for r in sent]


def test_value_over_default_limit_is_refused(broker, topic):
    """Default message.max.bytes (1048588): a 1 MiB value plus batch overhead is MESSAGE_TOO_LARGE."""
    create_topic(broker.bootstrap, topic)
    with pytest.raises(ClientError, match="MSG_SIZE_TOO_LARGE,val=10"):
        confluent_produce(
            broker.bootstrap, topic, _big_records(1, "big"), retries=0, **_BIG_CONF["confluent"]
        )
    # Nothing was appended, and the partition still takes normal records at offset 0.
    assert confluent_produce(broker.bootstrap, topic, make_records(1)) == [(0, 0)]
