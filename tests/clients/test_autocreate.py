"""Topic auto-creation: on by default (Metadata creates num.partitions partitions), off with
auto.create.topics.enable=false (UNKNOWN_TOPIC_OR_PARTITION), and never for a Metadata request
that says allow_auto_topic_creation=false (v4+; consumers send that)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from tests.helpers import (
    ClientError,
    confluent_admin,
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    create_topic,
    kafka_python_produce,
    make_records,
    unique_topic,
)


def _listed(bootstrap: str, topic: str) -> dict[int, object] | None:
    md = confluent_admin(bootstrap).list_topics(timeout=10)
    t = md.topics.get(topic)
    return None if t is None or t.error is not None else t.partitions


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_auto_create_on_produce(broker, client):
    topic = unique_topic(f"auto-{client}")
    produce = confluent_produce if client == "confluent" else kafka_python_produce
    assert produce(broker.bootstrap, topic, make_records(3)) == [(0, 0), (0, 1), (0, 2)]
    assert sorted(_listed(broker.bootstrap, topic) or {}) == [0]  # num.partitions=1
    assert [r.value for r in confluent_consume(broker.bootstrap, topic, 0, 0, 3)] == [b"r-0", b"r-1", b"r-2"]


def test_auto_create_uses_num_partitions(broker_factory):
    b = broker_factory(num_partitions=4)
    topic = unique_topic("auto-4")
    confluent_produce(b.bootstrap, topic, [r for p in range(4) for r in make_records(1, partition=p)])
    assert sorted(_listed(b.bootstrap, topic) or {}) == [0, 1, 2, 3]


def test_consumer_metadata_does_not_create(broker):
    """librdkafka consumers send allow_auto_topic_creation=false (allow.auto.create.topics=false)."""
    topic = unique_topic("no-auto-consumer")
    c = confluent_consumer(broker.bootstrap, **{"allow.auto.create.topics": False})
    try:
        md = c.list_topics(topic, timeout=10)
        assert md.topics[topic].error is not None
        assert md.topics[topic].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        c.close()
    assert _listed(broker.bootstrap, topic) is None


def test_auto_create_off(broker_factory):
    b = broker_factory(auto_create_topics_enable=False)
    topic = unique_topic("no-auto")
    md = confluent_admin(b.bootstrap).list_topics(topic, timeout=10)
    assert md.topics[topic].error is not None
    assert md.topics[topic].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    started = time.monotonic()
    with pytest.raises(ClientError, match="UNKNOWN_TOPIC|_UNKNOWN_TOPIC"):
        confluent_produce(
            b.bootstrap, topic, make_records(1),
            **{"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 8000},
        )  # fmt: skip
    assert time.monotonic() - started < 15

    from kafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

    with pytest.raises((ClientError, KafkaTimeoutError, UnknownTopicOrPartitionError)):
        kafka_python_produce(b.bootstrap, topic, make_records(1), max_block_ms=3000)
    assert _listed(b.bootstrap, topic) is None

    # Explicit creation still works, and then producing does.
    create_topic(b.bootstrap, topic)
    assert confluent_produce(b.bootstrap, topic, make_records(2)) == [(0, 0), (0, 1)]
