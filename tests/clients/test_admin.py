"""Admin APIs through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient.

CreateTopics (with configs; duplicates and bad values refused), DeleteTopics, DescribeConfigs
(topic and broker), AlterConfigs, IncrementalAlterConfigs, CreatePartitions, DeleteRecords,
DescribeCluster and ListOffsets: each answer is checked against what the broker then serves.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from tests.helpers import (
    Rec,
    confluent_admin,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    kafka_python_produce,
    make_records,
    unique_topic,
    wait_for,
)

TIMEOUT = 20


def _result(future: Any) -> Any:
    return future.result(timeout=TIMEOUT)


def _error_code(future: Any) -> int:
    """The Kafka error code a failed admin future carries (fails the test if it succeeded)."""
    with pytest.raises(KafkaException) as info:
        future.result(timeout=TIMEOUT)
    return int(info.value.args[0].code())


def _partitions(admin: Any, topic: str) -> list[int] | None:
    md = admin.list_topics(timeout=TIMEOUT)
    t = md.topics.get(topic)
    return None if t is None or t.error is not None else sorted(t.partitions)


def _topic_configs(admin: Any, topic: str) -> dict[str, Any]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return _result(admin.describe_configs([res])[res])


# confluent-kafka AdminClient -------------------------------------------------------------------


def test_create_describe_delete_topic(broker):
    admin = confluent_admin(broker.bootstrap)
    topic = unique_topic("admin-lifecycle")
    fs = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=3,
                replication_factor=1,
                config={"retention.ms": "3600000", "cleanup.policy": "delete"},
            )
        ]
    )
    assert _result(fs[topic]) is None
    assert _partitions(admin, topic) == [0, 1, 2]
    md = admin.list_topics(topic, timeout=TIMEOUT).topics[topic]
    for p in md.partitions.values():
        assert p.leader == p.replicas[0] == p.isrs[0] and len(p.replicas) == 1

    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"].value == "3600000"
    assert not configs["retention.ms"].is_default
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # An unset key shows its effective value, inherited from the broker's defaults.
    assert configs["segment.bytes"].value == "1073741824"
    assert configs["max.message.bytes"].value == "1048588"

    # Creating it again is TOPIC_ALREADY_EXISTS; the topic is untouched.
    again = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    assert _error_code(again[topic]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert _partitions(admin, topic) == [0, 1, 2]

    confluent_produce(broker.bootstrap, topic, make_records(5, partition=2))
    assert _result(admin.delete_topics([topic])[topic]) is None
    wait_for(lambda: _partitions(admin, topic) is None, what=f"{topic} gone from metadata")
    assert _error_code(admin.delete_topics([topic])[topic]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_recreated_topic_starts_empty(broker):
    admin = confluent_admin(broker.bootstrap)
    topic = unique_topic("admin-recreate")
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap, topic, make_records(7))
    _result(admin.delete_topics([topic])[topic])
    wait_for(lambda: _partitions(admin, topic) is None, what=f"{topic} deleted")
    create_topic(broker.bootstrap, topic)
    assert confluent_watermarks(broker.bootstrap, topic) == (0, 0)
    assert confluent_produce(broker.bootstrap, topic, make_records(1)) == [(0, 0)]


@pytest.mark.parametrize(
    "name, partitions, config, code",
    [
        ("bad name!", 1, {}, KafkaError.TOPIC_EXCEPTION),
        ("ok", 1, {"retention.ms": "not-a-number"}, KafkaError.INVALID_CONFIG),
        ("ok", 1, {"cleanup.policy": "sometimes"}, KafkaError.INVALID_CONFIG),
        ("ok", 1, {"no.such.topic.config": "1"}, KafkaError.INVALID_CONFIG),
    ],
    ids=["illegal-name", "non-numeric", "bad-enum", "unknown-key"],
)
def test_create_topic_refused(broker, name, partitions, config, code):
    admin = confluent_admin(broker.bootstrap)
    topic = name if name != "ok" else unique_topic("admin-refused")
    fs = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)]
    )
    assert _error_code(fs[topic]) == code
    assert _partitions(admin, topic) is None


def test_incremental_alter_configs(broker, topic):
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic, config={"retention.ms": "3600000"})
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    _result(admin.incremental_alter_configs([res])[res])
    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"].value == "7200000"
    assert configs["max.message.bytes"].value == "2000000"

    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)
        ],
    )
    _result(admin.incremental_alter_configs([res])[res])
    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"].is_default
    assert configs["retention.ms"].value == str(168 * 3600 * 1000)  # log.retention.hours default
    assert configs["max.message.bytes"].value == "2000000"  # untouched by the DELETE of another key


def test_alter_configs_replaces_the_whole_set(broker, topic):
    """Legacy AlterConfigs: keys not named go back to their defaults (Kafka semantics)."""
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic, config={"retention.ms": "3600000", "max.message.bytes": "2000000"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "60000"})
    _result(admin.alter_configs([res])[res])
    configs = _topic_configs(admin, topic)
    assert configs["retention.ms"].value == "60000"
    assert configs["max.message.bytes"].is_default
    assert configs["max.message.bytes"].value == "1048588"


def test_altered_max_message_bytes_is_enforced(broker, topic):
    """A config change takes effect for the next produce, not only in DescribeConfigs."""
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic)
    big = make_records(1, value_size=200_000)
    assert confluent_produce(broker.bootstrap, topic, big) == [(0, 0)]
    res = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    _result(admin.incremental_alter_configs([res])[res])
    with pytest.raises(Exception, match="MSG_SIZE_TOO_LARGE"):
        confluent_produce(broker.bootstrap, topic, big, retries=0)
    assert confluent_watermarks(broker.bootstrap, topic) == (0, 1)


def test_describe_broker_configs(broker):
    admin = confluent_admin(broker.bootstrap)
    cluster = _result(admin.describe_cluster())
    node_id = cluster.nodes[0].id
    res = ConfigResource(ResourceType.BROKER, str(node_id))
    configs = _result(admin.describe_configs([res])[res])
    assert configs["num.partitions"].value == "1"
    assert configs["message.max.bytes"].value == "1048588"
    assert configs["auto.create.topics.enable"].value == "true"
    assert configs["log.segment.bytes"].value == "1073741824"


def test_describe_cluster(broker):
    admin = confluent_admin(broker.bootstrap)
    cluster = _result(admin.describe_cluster())
    assert cluster.cluster_id
    # One node per shard: shard i is node node.id + i on the bootstrap port + i.
    host, port = broker.bootstrap.split(":")
    nodes = sorted((n.id, n.host, n.port) for n in cluster.nodes)
    assert nodes == [(1 + i, host, int(port) + i) for i in range(broker.shards)]
    assert cluster.controller.id == 1


def test_create_partitions(broker, topic):
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic, partitions=2)
    confluent_produce(broker.bootstrap, topic, make_records(3, partition=1))
    _result(admin.create_partitions([NewPartitions(topic, 5)])[topic])
    wait_for(lambda: _partitions(admin, topic) == [0, 1, 2, 3, 4], what="5 partitions in metadata")
    # New partitions take records; old ones keep theirs.
    assert confluent_produce(broker.bootstrap, topic, make_records(2, partition=4)) == [(4, 0), (4, 1)]
    assert confluent_watermarks(broker.bootstrap, topic, 1) == (0, 3)
    assert [r.value for r in confluent_consume(broker.bootstrap, topic, 4, 0, 2)] == [b"r-0", b"r-1"]
    # Shrinking is refused.
    assert (
        _error_code(admin.create_partitions([NewPartitions(topic, 3)])[topic])
        == KafkaError.INVALID_PARTITIONS
    )
    assert _partitions(admin, topic) == [0, 1, 2, 3, 4]


def test_elect_leaders_on_one_host_needs_no_election(broker, topic):
    """ElectLeaders on a single host: its one replica always leads (tests/cluster elects for real)."""
    from confluent_kafka import ElectionType

    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic, partitions=2)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(topic, 7)]
    results = _result(admin.elect_leaders(ElectionType.PREFERRED, tps))
    assert {tp.partition: err.code() for tp, err in results.items()} == {
        0: KafkaError.ELECTION_NOT_NEEDED, 1: KafkaError.ELECTION_NOT_NEEDED, 7: KafkaError.UNKNOWN_TOPIC_OR_PART}


def test_delete_records(broker, topic):
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap, topic, make_records(20))
    deleted = _result(admin.delete_records([TopicPartition(topic, 0, 5)])[TopicPartition(topic, 0, 5)])
    assert deleted.low_watermark == 5
    assert confluent_watermarks(broker.bootstrap, topic) == (5, 20)
    got = confluent_consume(broker.bootstrap, topic, 0, 5, 15)
    assert [r.offset for r in got] == list(range(5, 20))
    assert got[0].value == b"r-5"
    # Reading below the log start offset is OFFSET_OUT_OF_RANGE (the consumer's reset policy is "error").
    with pytest.raises(KafkaException) as info:
        confluent_consume(broker.bootstrap, topic, 0, 2, 1, timeout=10)
    assert info.value.args[0].code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)
    # Past the high watermark is refused; offset -1 means "up to the high watermark".
    tp = TopicPartition(topic, 0, 25)
    assert _error_code(admin.delete_records([tp])[tp]) == KafkaError.OFFSET_OUT_OF_RANGE
    tp = TopicPartition(topic, 0, -1)
    assert _result(admin.delete_records([tp])[tp]).low_watermark == 20
    assert confluent_watermarks(broker.bootstrap, topic) == (20, 20)
    # The log still appends at 20.
    assert confluent_produce(broker.bootstrap, topic, make_records(1)) == [(0, 20)]


def test_list_offsets_admin(broker, topic):
    admin = confluent_admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic)
    ts0 = int(time.time() * 1000) - 100_000
    # Timestamps out of order on purpose: record 4 has the largest.
    stamps = [ts0 + 1000, ts0 + 3000, ts0 + 2000, ts0 + 4000, ts0 + 9000, ts0 + 5000]
    recs = [Rec(r.key, r.value, r.headers, ts) for r, ts in zip(make_records(6), stamps, strict=True)]
    confluent_produce(broker.bootstrap, topic, recs)
    tp = TopicPartition(topic, 0)
    specs = {
        "earliest": OffsetSpec.earliest(),
        "latest": OffsetSpec.latest(),
        "max": OffsetSpec.max_timestamp(),
        "t2500": OffsetSpec.for_timestamp(ts0 + 2500),
        "t0": OffsetSpec.for_timestamp(ts0),
        "future": OffsetSpec.for_timestamp(ts0 + 50_000),
    }
    got = {name: _result(admin.list_offsets({tp: spec})[tp]) for name, spec in specs.items()}
    assert got["earliest"].offset == 0
    assert got["latest"].offset == 6
    assert (got["max"].offset, got["max"].timestamp) == (4, ts0 + 9000)
    assert (got["t2500"].offset, got["t2500"].timestamp) == (1, ts0 + 3000)  # first record with ts >= target
    assert (got["t0"].offset, got["t0"].timestamp) == (0, ts0 + 1000)
    assert got["future"].offset == -1


# kafka-python KafkaAdminClient -----------------------------------------------------------------


@pytest.fixture
def kp_admin(broker):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    yield admin
    admin.close()


def test_kafka_python_topic_lifecycle(broker, kp_admin):
    from kafka.admin import ConfigResource as KpConfigResource
    from kafka.admin import ConfigResourceType
    from kafka.admin import NewPartitions as KpNewPartitions
    from kafka.structs import TopicPartition as KpTopicPartition

    topic = unique_topic("kp-admin")
    created = kp_admin.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "123456"}}}
    )
    assert [(t["name"], t["error_code"]) for t in created["topics"]] == [(topic, 0)]
    assert topic in kp_admin.list_topics()
    (desc,) = kp_admin.describe_topics([topic])
    assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1]

    configs = kp_admin.describe_configs(
        [KpConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
    )
    topic_configs = configs["topic"][topic]
    assert topic_configs["retention.ms"]["value"] == "123456"
    assert topic_configs["segment.bytes"]["value"] == "1073741824"

    kp_admin.alter_configs(
        [KpConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "654321"})]
    )
    configs = kp_admin.describe_configs(
        [KpConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
    )
    assert configs["topic"][topic]["retention.ms"]["value"] == "654321"

    kp_admin.create_partitions({topic: KpNewPartitions(3)})
    wait_for(
        lambda: (
            sorted(p["partition_index"] for p in kp_admin.describe_topics([topic])[0]["partitions"])
            == [0, 1, 2]
        ),
        what="3 partitions",
    )

    kafka_python_produce(broker.bootstrap, topic, make_records(10, partition=2))
    kp_admin.delete_records({KpTopicPartition(topic, 2): 4})
    assert confluent_watermarks(broker.bootstrap, topic, 2) == (4, 10)

    kp_admin.delete_topics([topic])
    wait_for(lambda: topic not in kp_admin.list_topics(), what=f"{topic} deleted")


def test_kafka_python_describe_cluster(broker, kp_admin):
    cluster = kp_admin.describe_cluster()
    assert cluster["cluster_id"]
    host, port = broker.bootstrap.split(":")
    nodes = sorted((b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"])
    assert nodes == [(1 + i, host, int(port) + i) for i in range(broker.shards)]
    assert cluster["controller_id"] == 1


def test_kafka_python_reassignment_on_one_host(broker, kp_admin, topic):
    """A single host keeps one replica per partition: naming its own node is a no-op, anything
    else INVALID_REPLICA_ASSIGNMENT, a cancel NO_REASSIGNMENT_IN_PROGRESS; nothing is ever
    listed as moving (tests/cluster/test_reassignment.py moves replicas for real)."""
    from kafka.errors import (
        InvalidReplicationAssignmentError,
        NoReassignmentInProgressError,
        UnknownTopicOrPartitionError,
    )
    from kafka.structs import TopicPartition as KpTopicPartition

    create_topic(broker.bootstrap, topic, partitions=1)
    leader = confluent_admin(broker.bootstrap).list_topics(topic, timeout=10).topics[topic].partitions[0].leader
    tp, missing = KpTopicPartition(topic, 0), KpTopicPartition(topic, 3)
    assert kp_admin.alter_partition_reassignments({tp: [leader]}) == {tp: None}
    assert kp_admin.alter_partition_reassignments({tp: [leader + 50]}) == {tp: InvalidReplicationAssignmentError}
    assert kp_admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
    assert kp_admin.alter_partition_reassignments({missing: [leader]}) == {missing: UnknownTopicOrPartitionError}
    assert kp_admin.list_partition_reassignments() == {}
