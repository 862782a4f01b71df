"""Group administration through real admin clients: ListGroups, DescribeGroups, DeleteGroups,
OffsetDelete, and committed offsets listed and altered (OffsetFetch v8 / OffsetCommit)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.groups.conftest import Members, wait_until
from tests.groups.test_persistence import consume, fill, group_consumer
from tests.helpers import create_topic, unique_topic


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.mark.timeout(90)
def test_list_describe_delete_with_confluent_admin(gbroker: Any, members: Members) -> None:
    topic = unique_topic("admin")
    create_topic(gbroker.bootstrap, topic, partitions=2)
    active, idle = f"active-{topic}", f"idle-{topic}"
    m = members.start(gbroker.bootstrap, active, topic)
    wait_until(lambda: len(m.owned()) == 2, 30, "the active group's member")
    c = group_consumer(gbroker.bootstrap, idle)
    c.assign([TopicPartition(topic, 0, 0)])
    c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    c.close()
    a = admin(gbroker.bootstrap)

    listed = a.list_consumer_groups(request_timeout=10).result()
    states = {g.group_id: g.state for g in listed.valid}
    assert states[active] == ConsumerGroupState.STABLE and states[idle] == ConsumerGroupState.EMPTY
    stable_only = a.list_consumer_groups(states={ConsumerGroupState.STABLE}, request_timeout=10).result()
    assert active in {g.group_id for g in stable_only.valid} and idle not in {g.group_id for g in stable_only.valid}

    desc = a.describe_consumer_groups([active, idle], request_timeout=10)
    d = desc[active].result()
    assert d.state == ConsumerGroupState.STABLE and d.partition_assignor == "range"
    assert len(d.members) == 1
    assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions) == [0, 1]
    assert d.members[0].host == "/127.0.0.1"  # the member's address, as Kafka reports it (JoinGroup)
    assert desc[idle].result().state == ConsumerGroupState.EMPTY

    deleted = a.delete_consumer_groups([active, idle], request_timeout=10)
    with pytest.raises(KafkaException, match="NON_EMPTY_GROUP"):
        deleted[active].result()
    deleted[idle].result()
    listed = a.list_consumer_groups(request_timeout=10).result()
    assert idle not in {g.group_id for g in listed.valid}
    assert m.stop() == 0


@pytest.mark.timeout(90)
def test_list_alter_and_delete_committed_offsets(gbroker: Any) -> None:
    topic = unique_topic("admin-offsets")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=3)
    fill(gbroker.bootstrap, topic, 3, 5)
    a = admin(gbroker.bootstrap)
    tps = [TopicPartition(topic, p, 1 + p) for p in range(3)]
    altered = a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])[group].result()
    assert {tp.partition: tp.error for tp in altered.topic_partitions} == {0: None, 1: None, 2: None}
    listed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    assert {tp.partition: tp.offset for tp in listed.topic_partitions} == {0: 1, 1: 2, 2: 3}
    delete_offsets(gbroker.bootstrap, group, topic, 1)  # confluent-kafka's Python admin has no OffsetDelete
    listed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    assert {tp.partition: tp.offset for tp in listed.topic_partitions} == {0: 1, 2: 3}
    # a consumer of the group starts where the offsets say
    c = group_consumer(gbroker.bootstrap, group)
    c.subscribe([topic])
    got = consume(c, 5 + 4 + 2)
    c.close()
    assert sorted((m.partition(), m.offset()) for m in got)[0] == (0, 1)
    assert {m.partition(): min(x.offset() for x in got if x.partition() == m.partition()) for m in got} == {
        0: 1, 1: 0, 2: 3}


def delete_offsets(bootstrap: str, group: str, topic: str, partition: int) -> Any:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition

    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return a.delete_group_offsets(group, [KTopicPartition(topic, partition)])
    finally:
        a.close()


@pytest.mark.timeout(90)
def test_kafka_python_admin(gbroker: Any) -> None:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import MemberToRemove

    topic = unique_topic("kp-admin")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic)
    fill(gbroker.bootstrap, topic, 1, 3)
    c = group_consumer(gbroker.bootstrap, group, **{"group.instance.id": "kp-static"})
    c.subscribe([topic])
    assert len(consume(c, 3)) == 3
    c.commit(asynchronous=False)
    a = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap)
    try:
        listed = {g["group_id"]: g for g in a.list_groups()}
        assert (listed[group]["protocol_type"], listed[group]["group_state"]) == ("consumer", "Stable")
        offsets = a.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in offsets.items()} == {0: 3}
        described = a.describe_groups([group])[group]
        assert described["group_state"] == "Stable" and described["protocol_data"] == "range"
        [member] = described["members"]
        assert member["group_instance_id"] == "kp-static"
        assert member["member_assignment"]["assigned_partitions"] == [{"topic": topic, "partitions": [0]}]
        # the subscribed topic's offsets cannot be deleted while the group consumes it
        errors = delete_offsets(gbroker.bootstrap, group, topic, 0)
        assert errors[KTopicPartition(topic, 0)].__name__ == "GroupSubscribedToTopicError"
        # administrative removal of the static member (LeaveGroup v3+ by instance id)
        a.remove_group_members(group, [MemberToRemove(group_instance_id="kp-static")])
        wait_until(lambda: "Empty" in str(a.describe_groups([group])), 10, "the group to be empty")
        a.delete_groups([group])
        assert group not in {g["group_id"] for g in a.list_groups()}
    finally:
        c.close()
        a.close()
