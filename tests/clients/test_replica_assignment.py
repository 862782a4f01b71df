"""Manual replica assignments (CreateTopics / CreatePartitions `assignments`) over pyk's shard nodes.

A broker with 2 shards advertises 2 nodes; a one-replica assignment puts each partition on the
shard it names, Metadata shows that node as leader, produce and consume go through it, and the
placement survives a restart.  Bad assignments get Kafka's codes (INVALID_REPLICA_ASSIGNMENT,
INVALID_REQUEST); more than one replica gets INVALID_REPLICATION_FACTOR, as a host without
zookeeper.connect does not replicate, with a message naming how to get replicas on one host
(docs/compatibility.md; tests/cluster/test_assignment.py does it).
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic

from tests.helpers import (
    confluent_admin,
    confluent_produce,
    confluent_read_to_end,
    make_records,
    unique_topic,
    wait_for,
)

TIMEOUT = 20
SHARDS = 2
ONE_HOST_REPLICAS = "run it with zookeeper.connect, e.g. `pyk cluster up --hosts 1 --shards 2`"  # the way out


@pytest.fixture
def broker2(broker_factory: Any) -> Any:
    """A broker of exactly 2 shards (2 nodes), whatever the machine's core count."""
    return broker_factory(num_shards=SHARDS)


def _new_topic(topic: str, assignment: list[list[int]]) -> NewTopic:
    """A topic of a manual assignment.  librdkafka wants the partition count given locally, and
    sends -1 for it and for the replication factor (rdkafka_request.c), as Kafka requires."""
    return NewTopic(topic, num_partitions=len(assignment), replication_factor=-1, replica_assignment=assignment)


def _nodes(admin: Any) -> list[int]:
    nodes = sorted(admin.list_topics(timeout=TIMEOUT).brokers)
    assert len(nodes) == SHARDS, nodes
    return nodes


def _leaders(admin: Any, topic: str) -> list[int] | None:
    """The leader node of each partition in order, None while the topic is not (fully) known."""
    t = admin.list_topics(topic, timeout=TIMEOUT).topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        return None
    return [t.partitions[p].leader for p in sorted(t.partitions)]


def _error(future: Any) -> KafkaError:
    """The error a failed admin future carries (fails the test if it succeeded)."""
    with pytest.raises(KafkaException) as info:
        future.result(timeout=TIMEOUT)
    return info.value.args[0]


def _check_served(b: Any, topic: str, leaders: list[int], nodes: list[int], records_per_partition: int = 5) -> None:
    """Each partition lives in its leader's shard directory, and its records read back through it."""
    for p, leader in enumerate(leaders):
        assert b.partition_dir(topic, p).parent.name == f"shard-{leader - nodes[0]}"
        got = confluent_read_to_end(b.bootstrap, topic, p)
        assert [r.value for r in got] == [f"p{p}-{i}".encode() for i in range(records_per_partition)]


def _produce(b: Any, topic: str, partitions: range, count: int = 5) -> None:
    for p in partitions:
        written = confluent_produce(b.bootstrap, topic, make_records(count, partition=p, prefix=f"p{p}"))
        assert written == [(p, i) for i in range(count)]


def test_one_replica_assignment_places_partitions_and_survives_restart(broker2):
    admin = confluent_admin(broker2.bootstrap)
    n0, n1 = _nodes(admin)
    topic = unique_topic("assign")
    assignment = [[n1], [n0], [n1], [n1]]
    admin.create_topics([_new_topic(topic, assignment)])[topic].result(timeout=TIMEOUT)
    expected = [r[0] for r in assignment]
    assert wait_for(lambda: _leaders(admin, topic) == expected, timeout=TIMEOUT, what=f"leaders {expected}")
    _produce(broker2, topic, range(4))
    _check_served(broker2, topic, expected, [n0, n1])

    broker2.restart()
    admin = confluent_admin(broker2.bootstrap)
    assert wait_for(lambda: _leaders(admin, topic) == expected, timeout=TIMEOUT, what=f"leaders {expected} after restart")
    _check_served(broker2, topic, expected, [n0, n1])


def test_create_partitions_with_assignment(broker2):
    admin = confluent_admin(broker2.bootstrap)
    n0, n1 = _nodes(admin)
    topic = unique_topic("grow")
    admin.create_topics([_new_topic(topic, [[n0]])])[topic].result(timeout=TIMEOUT)
    admin.create_partitions([NewPartitions(topic, 3, replica_assignment=[[n1], [n0]])])[topic].result(timeout=TIMEOUT)
    expected = [n0, n1, n0]
    assert wait_for(lambda: _leaders(admin, topic) == expected, timeout=TIMEOUT, what=f"leaders {expected}")
    _produce(broker2, topic, range(3))
    _check_served(broker2, topic, expected, [n0, n1])


def test_validate_only_creates_nothing(broker2):
    admin = confluent_admin(broker2.bootstrap)
    n0, n1 = _nodes(admin)
    topic = unique_topic("validate")
    admin.create_topics([_new_topic(topic, [[n1], [n0]])],
                        validate_only=True)[topic].result(timeout=TIMEOUT)
    assert admin.list_topics(timeout=TIMEOUT).topics.get(topic) is None
    # A bad assignment is refused with validate_only too.
    err = _error(admin.create_topics([_new_topic(topic, [[n1 + 7]])], validate_only=True)[topic])
    assert err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT

    admin.create_topics([_new_topic(topic, [[n1]])])[topic].result(timeout=TIMEOUT)
    admin.create_partitions([NewPartitions(topic, 3, replica_assignment=[[n0], [n0]])],
                            validate_only=True)[topic].result(timeout=TIMEOUT)
    assert wait_for(lambda: _leaders(admin, topic) == [n1], timeout=TIMEOUT, what="the topic")
    # Growing it for real afterwards proves the validate-only call added nothing: 2 would not grow 3.
    admin.create_partitions([NewPartitions(topic, 2, replica_assignment=[[n0]])])[topic].result(timeout=TIMEOUT)
    assert wait_for(lambda: _leaders(admin, topic) == [n1, n0], timeout=TIMEOUT, what="leaders [n1, n0]")


@pytest.mark.parametrize("case", ["unknown", "duplicate", "inconsistent", "two_replicas"])
def test_create_topics_bad_assignment(broker2, case):
    admin = confluent_admin(broker2.bootstrap)
    n0, n1 = _nodes(admin)
    assignment, code, says = {
        "unknown": ([[n0], [n1 + 5, n1 + 9]], KafkaError.INVALID_REPLICA_ASSIGNMENT, f"[{n1 + 5}, {n1 + 9}]"),
        "duplicate": ([[n0, n0]], KafkaError.INVALID_REPLICA_ASSIGNMENT, "more than once"),
        "inconsistent": ([[n0], [n0, n1]], KafkaError.INVALID_REPLICA_ASSIGNMENT, "not consistent"),
        "two_replicas": ([[n0, n1], [n1, n0]], KafkaError.INVALID_REPLICATION_FACTOR, ONE_HOST_REPLICAS),
    }[case]
    topic = unique_topic(case)
    err = _error(admin.create_topics([_new_topic(topic, assignment)])[topic])
    assert (err.code(), says in err.str()) == (code, True), err
    assert admin.list_topics(timeout=TIMEOUT).topics.get(topic) is None


def test_replication_factor_above_one_is_refused_alike(broker2):
    """Two nodes are advertised, yet a replication factor of 2 gets the same answer as a
    two-replica assignment: without zookeeper.connect no partition has a second replica, and
    the message says how to get one."""
    admin = confluent_admin(broker2.bootstrap)
    topic = unique_topic("rf2")
    err = _error(admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=2)])[topic])
    assert (err.code(), ONE_HOST_REPLICAS in err.str()) == (KafkaError.INVALID_REPLICATION_FACTOR, True), err


@pytest.mark.parametrize("case", ["unknown", "too_few", "two_replicas"])
def test_create_partitions_bad_assignment(broker2, case):
    admin = confluent_admin(broker2.bootstrap)
    n0, n1 = _nodes(admin)
    topic = unique_topic(case)
    admin.create_topics([_new_topic(topic, [[n0]])])[topic].result(timeout=TIMEOUT)
    assignment, says = {
        "unknown": ([[n1], [n1 + 3]], f"[{n1 + 3}]"),
        "too_few": ([[n1]], "add 2 additional partition(s), but 1 assignment(s)"),
        # Kafka refuses a replica count that differs from the topic's (1) with this code too.
        "two_replicas": ([[n1, n0], [n0, n1]], ONE_HOST_REPLICAS),
    }[case]
    err = _error(admin.create_partitions([NewPartitions(topic, 3, replica_assignment=assignment)])[topic])
    assert (err.code(), says in err.str()) == (KafkaError.INVALID_REPLICA_ASSIGNMENT, True), err
    assert _leaders(admin, topic) == [n0]


def test_kafka_python_assignments(broker2):
    """kafka-python sends what librdkafka refuses to: gaps in the partition numbers, and an
    assignment together with a partition count or replication factor."""
    from kafka.admin import KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=broker2.bootstrap, request_timeout_ms=20000)
    try:
        admin = confluent_admin(broker2.bootstrap)
        n0, n1 = _nodes(admin)

        def create(options: dict[str, Any]) -> tuple[str, int, str | None]:
            topic = unique_topic("kp")
            (result,) = kp.create_topics({topic: options}, raise_errors=False)["topics"]
            return topic, result["error_code"], result["error_message"]

        topic, code, _ = create({"assignments": {0: [n1], 1: [n0], 2: [n1]}})
        assert code == 0
        assert wait_for(lambda: _leaders(admin, topic) == [n1, n0, n1], timeout=TIMEOUT, what="leaders")
        kp.create_partitions({topic: {"count": 4, "assignments": [[n0]]}})
        assert wait_for(lambda: _leaders(admin, topic) == [n1, n0, n1, n0], timeout=TIMEOUT, what="4 leaders")

        _, code, message = create({"assignments": {0: [n0], 2: [n1]}})
        assert (code, "consecutive" in (message or "")) == (KafkaError.INVALID_REPLICA_ASSIGNMENT, True), message
        _, code, _ = create({"num_partitions": 2, "assignments": {0: [n0], 1: [n1]}})
        assert code == KafkaError.INVALID_REQUEST
        _, code, _ = create({"replication_factor": 1, "assignments": {0: [n0]}})
        assert code == KafkaError.INVALID_REQUEST
    finally:
        kp.close()
