"""The reference peer itself: Apache Kafka starts from the fetched jars and serves a real client,
and Kafka's own tools run against pyk; the Java suites and differential tests build on both."""

from __future__ import annotations

from tests.helpers import BrokerProcess, Rec, confluent_produce, confluent_read_to_end, create_topic
from tests.kafka import ApacheKafka, run_java


def test_apache_kafka_round_trip(apache_kafka: ApacheKafka, topic: str) -> None:
    create_topic(apache_kafka.bootstrap, topic, partitions=1)
    records = [Rec(key=b"k%d" % i, value=b"v%d" % i) for i in range(10)]
    confluent_produce(apache_kafka.bootstrap, topic, records)
    got = confluent_read_to_end(apache_kafka.bootstrap, topic)
    assert [r.value for r in got] == [r.value for r in records]


def test_kafka_topic_command_lists_pyk_topics(broker: BrokerProcess, topic: str) -> None:
    create_topic(broker.bootstrap, topic, partitions=3)
    done = run_java("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", broker.bootstrap, "--list")
    assert topic in done.stdout.split()
