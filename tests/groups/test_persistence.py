"""Committed offsets and group metadata in `__consumer_offsets`: they survive a broker restart
(clean or kill -9), and the topic's records decode with Kafka's public schemas to exactly the
commits that were made."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from pyk.coordinator import OFFSETS_TOPIC, partition_for
from pyk.coordinator.records import (
    ConsumerGroupKey,
    GroupMetadataKey,
    OffsetCommitKey,
    decode_consumer_group_value,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
)
from tests.groups.conftest import GROUP_OVERRIDES
from tests.helpers import confluent_produce, create_topic, make_records, unique_topic


def fill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    for p in range(partitions):
        confluent_produce(bootstrap, topic, make_records(per_partition, partition=p, prefix=f"p{p}"))


def group_consumer(bootstrap: str, group: str, **conf: Any) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 2000, "heartbeat.interval.ms": 200,
                     "fetch.wait.max.ms": 50, **conf})


def consume(c: Consumer, n: int, timeout: float = 20) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(m.error())
        out.append(m)
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "kill-9"])
def test_consumption_resumes_at_the_committed_offset_after_restarts(broker_factory: Any, crash: bool) -> None:
    b = broker_factory(overrides=GROUP_OVERRIDES)
    topic, group = unique_topic("resume"), f"g-{time.time_ns()}"
    create_topic(b.bootstrap, topic, partitions=2)
    fill(b.bootstrap, topic, 2, 20)
    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    first = consume(c, 20)
    assert len(first) == 20
    c.commit(asynchronous=False)
    positions = {m.partition(): m.offset() + 1 for m in first}
    c.close()
    if crash:
        b.kill9()
        b.start()
    else:
        b.restart()
    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    rest = consume(c, 20)
    committed = c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    c.close()
    assert {tp.partition: tp.offset for tp in committed} == {p: positions.get(p, -1001) for p in (0, 1)}
    seen = {(m.partition(), m.offset()) for m in first}
    again = {(m.partition(), m.offset()) for m in rest}
    assert not seen & again, "messages before the committed offset were delivered again"
    assert len(seen | again) == 40


def read_offsets_topic(bootstrap: str, partitions: int) -> list[tuple[Any, Any]]:
    """Every (decoded key, decoded value) of `__consumer_offsets`, read with a plain consumer."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(OFFSETS_TOPIC, p, 0) for p in range(partitions)])
    out = []
    eof: set[int] = set()
    deadline = time.monotonic() + 20
    while len(eof) < partitions and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            eof.add(m.partition())
            continue
        key = decode_key(m.key())
        if isinstance(key, OffsetCommitKey):
            value = decode_offset_commit_value(m.value()) if m.value() is not None else None
        elif isinstance(key, ConsumerGroupKey):
            value = decode_consumer_group_value(key.type, m.value()) if m.value() is not None else None
        else:
            value = decode_group_metadata_value(m.value()) if m.value() is not None else None
        out.append((m.partition(), key, value))
    c.close()
    return out


@pytest.mark.timeout(60)
def test_offsets_topic_decodes_to_exactly_the_commits(gbroker: Any) -> None:
    topic, group = unique_topic("decode"), f"g-decode-{time.time_ns()}"
    create_topic(gbroker.bootstrap, topic, partitions=3)
    fill(gbroker.bootstrap, topic, 3, 10)
    c = group_consumer(gbroker.bootstrap, group)
    c.subscribe([topic])
    assert len(consume(c, 30)) == 30
    commits = [(0, 3, "a"), (1, 5, "b"), (0, 7, ""), (2, 10, "meta")]
    for partition, offset, metadata in commits:
        c.commit(offsets=[TopicPartition(topic, partition, offset, metadata=metadata)], asynchronous=False)
    c.close()
    records = read_offsets_topic(gbroker.bootstrap, int(GROUP_OVERRIDES["offsets.topic.num.partitions"]))
    mine = [(p, k, v) for p, k, v in records if k.group == group]
    home = partition_for(group, int(GROUP_OVERRIDES["offsets.topic.num.partitions"]))
    assert {p for p, _, _ in mine} == {home}, "a group's records all live in its partition"
    # confluent-kafka sends the metadata string with its C terminator; the broker keeps the bytes sent.
    offset_records = [(k.partition, v.offset, v.metadata.rstrip("\x00")) for _, k, v in mine
                      if isinstance(k, OffsetCommitKey)]
    assert offset_records == [(p, o, m) for p, o, m in commits]
    for _, k, v in mine:
        if isinstance(k, OffsetCommitKey):
            assert k.topic == topic and v.commit_timestamp > 0 and v.expire_timestamp == -1
    metadata = [v for _, k, v in mine if isinstance(k, GroupMetadataKey)]
    assert metadata, "the group's generations are recorded"
    assert metadata[0].protocol_type == "consumer" and len(metadata[0].members) == 1
    assert metadata[-1].members == [] and metadata[-1].generation == metadata[0].generation + 1  # it left


@pytest.mark.timeout(60)
def test_kcat_reads_the_offsets_topic(gbroker: Any) -> None:
    """The records are plain Kafka records: kcat prints them with their binary keys (-K)."""
    import shutil
    import subprocess

    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.skip("kcat is not installed")
    topic, group = unique_topic("kcat"), f"g-kcat-{time.time_ns()}"
    create_topic(gbroker.bootstrap, topic)
    confluent_produce(gbroker.bootstrap, topic, make_records(3))
    c = group_consumer(gbroker.bootstrap, group)
    c.assign([TopicPartition(topic, 0, 0)])
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    c.close()
    home = partition_for(group, int(GROUP_OVERRIDES["offsets.topic.num.partitions"]))
    out = subprocess.run([kcat, "-b", gbroker.bootstrap, "-C", "-t", OFFSETS_TOPIC, "-p", str(home), "-o",
                          "beginning", "-e", "-q", "-f", "%k\\n"], capture_output=True, timeout=30, check=True)
    assert group.encode() in out.stdout and topic.encode() in out.stdout
