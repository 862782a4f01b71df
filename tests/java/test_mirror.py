"""MirrorMaker 2 from one pyk to another: topics, records and consumer group offsets.

The dedicated MirrorMaker driver runs the A->B flow's three connectors (MirrorSource,
MirrorCheckpoint, MirrorHeartbeat) in a Connect herder whose config, offset and status topics
live on the target pyk. The default replication policy renames topic T of cluster A to `A.T`; a
group's committed offsets on A come out as checkpoints on B and, with sync.group.offsets, as
that group's committed offsets for `A.T` on B.

Translation goes through offset syncs (upstream offset -> downstream offset), which MirrorMaker
emits for the last record it committed of each partition and for as many others as its limit of
syncs in flight lets it: a group at the end of a partition translates exactly, one inside it only
down to the nearest sync (timing-dependent), so the test's group sits at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import BrokerFactory
from tests.helpers import (
    Rec,
    confluent_admin,
    confluent_consumer,
    confluent_produce,
    confluent_read_to_end,
    create_topic,
    unique_topic,
    wait_for,
)
from tests.java.jvm import JavaProcess

MIRROR_S = 120.0  # JVM start, three connectors, first replication and checkpoints on 2 cores
PARTITIONS = 2
RECORDS = {0: 200, 1: 120}
# Records deleted from the source before MirrorMaker starts (DeleteRecords): upstream offsets run
# ahead of downstream ones by this much, so a checkpoint must translate, not copy.
EARLIER = 7
RETENTION_MS = "123456789"  # a topic config MirrorMaker carries over to the remote topic


def mm2_properties(source: str, target: str, topic: str, group: str) -> str:
    props = {
        "clusters": "A, B",
        "A.bootstrap.servers": source,
        "B.bootstrap.servers": target,
        "A->B.enabled": "true",
        "A->B.topics": topic,
        "A->B.groups": group,
        "B->A.enabled": "false",
        "replication.factor": "1",
        "checkpoints.topic.replication.factor": "1",
        "heartbeats.topic.replication.factor": "1",
        "offset-syncs.topic.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "config.storage.replication.factor": "1",
        "offset.storage.partitions": "1",
        "status.storage.partitions": "1",
        "offset.lag.max": "0",  # offset syncs as often as MirrorMaker allows (at most 10 in flight)
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": "1",
        "emit.checkpoints.interval.seconds": "1",
        "emit.heartbeats.interval.seconds": "1",
        "refresh.topics.interval.seconds": "1",
        "refresh.groups.interval.seconds": "1",
        # Worker settings of the herder that targets B take B's prefix. The offset flush also
        # sends the offset sync of each partition's last record (promoted at commit).
        "B.offset.flush.interval.ms": "1000",
        "B.scheduled.rebalance.max.delay.ms": "0",
        "B.plugin.discovery": "service_load",  # no reflective scan of every jar (~10 s)
        "plugin.discovery": "service_load",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets for the topic's partitions (absent ones left out)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    admin = confluent_admin(bootstrap)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    result: Any = admin.list_consumer_group_offsets([request])[group].result(timeout=20)
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def delete_records(bootstrap: str, topic: str, before: int) -> None:
    from confluent_kafka import TopicPartition

    admin = confluent_admin(bootstrap)
    futures = admin.delete_records([TopicPartition(topic, p, before) for p in range(PARTITIONS)])
    for future in futures.values():
        future.result(timeout=20)


def remote_config(bootstrap: str, topic: str) -> str | None:
    """The remote topic's retention.ms, None while it does not exist."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    admin = confluent_admin(bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        entries = admin.describe_configs([resource])[resource].result(timeout=20)
    except KafkaException:
        return None
    return str(entries["retention.ms"].value)


def test_mirror_maker_replicates_topic_records_and_group_offsets(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    source = broker_factory(group_initial_rebalance_delay_ms=0)
    target = broker_factory(group_initial_rebalance_delay_ms=0)
    topic, group = unique_topic("mirrored"), unique_topic("mirrored-group")
    remote = f"A.{topic}"
    create_topic(source.bootstrap, topic, partitions=PARTITIONS, config={"retention.ms": RETENTION_MS})
    earlier = [
        Rec(key=b"deleted", value=b"%d" % i, partition=p) for p in range(PARTITIONS) for i in range(EARLIER)
    ]
    confluent_produce(source.bootstrap, topic, earlier)
    delete_records(source.bootstrap, topic, EARLIER)
    sent = {
        p: [Rec(key=f"k{p}-{i}".encode(), value=f"v{p}-{i}".encode(), partition=p) for i in range(RECORDS[p])]
        for p in range(PARTITIONS)
    }
    confluent_produce(source.bootstrap, topic, [r for p in range(PARTITIONS) for r in sent[p]])
    from confluent_kafka import TopicPartition

    consumer = confluent_consumer(source.bootstrap, **{"group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, EARLIER + n) for p, n in RECORDS.items()], asynchronous=False
        )
    finally:
        consumer.close()

    config = tmp_path / "mm2.properties"
    config.write_text(mm2_properties(source.bootstrap, target.bootstrap, topic, group))
    mm2 = JavaProcess(
        "org.apache.kafka.connect.mirror.MirrorMaker", (str(config), "--clusters", "B"), tmp_path / "mm2.log"
    )
    try:
        mm2.start()
        wait_for(lambda: remote_config(target.bootstrap, remote) == RETENTION_MS, timeout=MIRROR_S,
                 what=f"{remote} with retention.ms {RETENTION_MS} on the target\n{mm2.log_tail()}")  # fmt: skip
        for p in range(PARTITIONS):
            deadline = time.monotonic() + MIRROR_S
            got: list[Rec] = []
            while len(got) < RECORDS[p] and time.monotonic() < deadline:
                time.sleep(0.2)
                got = confluent_read_to_end(target.bootstrap, remote, partition=p, timeout=10)
            assert [(r.key, r.value, r.offset) for r in got] == [
                (r.key, r.value, i) for i, r in enumerate(sent[p])
            ], f"{remote}-{p}: {len(got)} records\n{mm2.log_tail()}"
        expected = dict(RECORDS)  # upstream EARLIER + n is downstream n
        wait_for(
            lambda: group_offsets(target.bootstrap, group, remote) == expected,
            timeout=MIRROR_S, interval=0.5,
            what=f"{group}'s offsets for {remote} on the target to be {expected}\n{mm2.log_tail()}",
        )  # fmt: skip
        # Every scheduled task ran by now (topic ACL sync included, which pyk answers with
        # SECURITY_DISABLED as Kafka without an authorizer); none of them failed.
        assert " ERROR " not in mm2.log_text(), mm2.log_tail()
    finally:
        mm2.stop()
