"""The APIs a KIP-848 (group.protocol=consumer) client uses besides ConsumerGroupHeartbeat:
ConsumerGroupDescribe (69), OffsetCommit / OffsetFetch v9 fenced by member epoch, and
INVALID_REGULAR_EXPRESSION for a subscription pattern that does not compile.

Real clients first (librdkafka's AdminClient describes consumer groups with API 69 and falls
back to DescribeGroups on GROUP_ID_NOT_FOUND; its group.protocol=consumer members commit with
OffsetCommit v9), then the error cases at the protocol level (tests/groups/wire.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupType, KafkaError, TopicPartition
from confluent_kafka.admin import AclOperation, AdminClient

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.groups.conftest import wait_until
from tests.groups.test_consumer_protocol import _consumer
from tests.groups.test_persistence import consume, fill, group_consumer
from tests.groups.test_wire import coordinator, stable_member
from tests.groups.wire import Client
from tests.helpers import api_versions_probe, create_topic, unique_topic


def heartbeat(c: Client, group: str, member_id: str, epoch: int, topics: list[str] | None = None,
              regex: str | None = None, owned: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return c.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "rebalance_timeout_ms": 30000,
        "subscribed_topic_names": topics, "subscribed_topic_regex": regex, "topic_partitions": owned})


def describe(c: Client, group: str, version: int = 1, operations: bool = False) -> dict[str, Any]:
    r = c.call(ApiKey.CONSUMER_GROUP_DESCRIBE, version, {"group_ids": [group],
                                                         "include_authorized_operations": operations})
    [entry] = r["groups"]
    return entry


def test_api_versions_advertise_kip848_apis(gbroker: Any) -> None:
    host, port = gbroker.bootstrap.rsplit(":", 1)
    versions = {key: (lo, hi) for key, lo, hi in api_versions_probe(host, int(port))}
    assert versions[ApiKey.CONSUMER_GROUP_DESCRIBE] == (0, 1)
    assert versions[ApiKey.OFFSET_COMMIT][1] == 9
    assert versions[ApiKey.OFFSET_FETCH][1] == 9


# ConsumerGroupDescribe ----------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_admin_client_describes_consumer_and_classic_groups(gbroker: Any) -> None:
    topic = unique_topic("cgd")
    create_topic(gbroker.bootstrap, topic, partitions=3)
    fill(gbroker.bootstrap, topic, 3, 4)
    group, classic_group = f"g-{topic}", f"classic-{topic}"
    c = _consumer(gbroker.bootstrap, group)
    classic = group_consumer(gbroker.bootstrap, classic_group)
    c.subscribe([topic])
    classic.subscribe([topic])
    try:
        assert len(consume(c, 12, timeout=30)) == 12
        assert len(consume(classic, 12, timeout=30)) == 12
        admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
        futures = admin.describe_consumer_groups([group, classic_group], include_authorized_operations=True)
        described = futures[group].result(timeout=20)
        # Only ConsumerGroupDescribe gives the group type, the server assignor and target assignments.
        assert described.type == ConsumerGroupType.CONSUMER
        assert described.state == ConsumerGroupState.STABLE
        assert described.partition_assignor == "uniform"
        [member] = described.members
        everything = {(topic, p) for p in range(3)}
        assert {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} == everything
        assert member.target_assignment is not None
        assert {(tp.topic, tp.partition) for tp in member.target_assignment.topic_partitions} == everything
        assert set(described.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE}
        assert member.host == "/127.0.0.1"  # the member's address (ConsumerGroupHeartbeat's peer)
        # A classic group is GROUP_ID_NOT_FOUND to API 69: the admin client describes it with
        # DescribeGroups instead.
        old = futures[classic_group].result(timeout=20)
        assert old.type == ConsumerGroupType.CLASSIC
        assert old.state == ConsumerGroupState.STABLE and len(old.members) == 1
        assert old.members[0].host == "/127.0.0.1"  # JoinGroup's peer
    finally:
        c.close()
        classic.close()


def test_consumer_group_describe_on_the_wire(gbroker: Any) -> None:
    prefix = unique_topic("cgdw")
    create_topic(gbroker.bootstrap, f"{prefix}-a", partitions=2)
    create_topic(gbroker.bootstrap, f"{prefix}-b", partitions=2)
    group = f"g-{prefix}"
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with coordinator(gbroker, group) as c:
        first = heartbeat(c, group, a, 0, topics=[f"{prefix}-a"])
        assert first["error_code"] == ErrorCode.NONE, first
        second = heartbeat(c, group, b, 0, topics=[], regex=f"{prefix}-.*")
        assert second["error_code"] == ErrorCode.NONE, second
        for version in (0, 1):
            entry = describe(c, group, version)
            assert entry["error_code"] == ErrorCode.NONE, entry
            assert entry["group_state"] == "Reconciling"  # a still owns what b's target gives b
            assert entry["group_epoch"] == entry["assignment_epoch"] == second["member_epoch"]
            assert entry["assignor_name"] == "uniform"
            assert entry["authorized_operations"] == -2147483648  # not asked
            members = {m["member_id"]: m for m in entry["members"]}
            assert members[a]["subscribed_topic_names"] == [f"{prefix}-a"]
            assert members[a]["subscribed_topic_regex"] == ""  # as Kafka describes a member without one
            assert members[b]["subscribed_topic_regex"] == f"{prefix}-.*"
            assert members[a]["member_epoch"] == first["member_epoch"]
            assert members[a]["client_id"] == c.client_id
            # a owns both partitions of -a; the target moves what b subscribes to (by its regex) to b.
            current = {(t["topic_name"], p) for t in members[a]["assignment"]["topic_partitions"]
                       for p in t["partitions"]}
            assert current == {(f"{prefix}-a", 0), (f"{prefix}-a", 1)}
            targets = {mid: {(t["topic_name"], p) for t in m["target_assignment"]["topic_partitions"]
                             for p in t["partitions"]} for mid, m in members.items()}
            assert targets[a] | targets[b] == {(f"{prefix}-{t}", p) for t in "ab" for p in (0, 1)}
            assert not targets[a] & targets[b]
            assert members[a]["member_type"] == (1 if version >= 1 else -1)
        assert describe(c, group, operations=True)["authorized_operations"] == (1 << 3) | (1 << 6) | (1 << 8)
        assert describe(c, "")["error_code"] == ErrorCode.INVALID_GROUP_ID
    with coordinator(gbroker, f"nope-{prefix}") as c:
        unknown = describe(c, f"nope-{prefix}")
        assert unknown["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND, unknown


def test_consumer_group_describe_of_a_classic_group(gbroker: Any) -> None:
    topic = unique_topic("cgdc")
    create_topic(gbroker.bootstrap, topic, partitions=2)
    group = f"classic-{topic}"
    with coordinator(gbroker, group) as c:
        stable_member(c, group, topic)
        entry = describe(c, group)
        assert entry["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND, entry
        assert entry["error_message"] == f"Group {group} is not a consumer group."


# OffsetCommit / OffsetFetch v9 ----------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_librdkafka_member_commits_and_fetches_with_v9(gbroker: Any) -> None:
    """librdkafka's group.protocol=consumer member commits with OffsetCommit v9 (pyk refuses
    an older version from such a member: test_offset_commit_v9_fencing) and reads its
    committed offsets back while it is a member (OffsetFetch v9 naming it)."""
    topic = unique_topic("v9")
    create_topic(gbroker.bootstrap, topic, partitions=2)
    fill(gbroker.bootstrap, topic, 2, 5)
    c = _consumer(gbroker.bootstrap, f"g-{topic}")
    c.subscribe([topic])
    try:
        got = consume(c, 10, timeout=30)
        assert len(got) == 10
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
        assert {(tp.partition, tp.offset, tp.error) for tp in committed} == {(0, 5, None), (1, 5, None)}
    finally:
        c.close()


def commit(c: Client, group: str, topic: str, member_id: str, epoch: int, version: int = 9,
           offset: int = 1) -> ErrorCode:
    r = c.call(ApiKey.OFFSET_COMMIT, version, {
        "group_id": group, "generation_id_or_member_epoch": epoch, "member_id": member_id,
        "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                   "committed_metadata": ""}]}]})
    [[code]] = [[p["error_code"] for p in t["partitions"]] for t in r["topics"]]
    return ErrorCode(code)


def fetch(c: Client, group: str, topic: str, member_id: str | None, epoch: int) -> tuple[ErrorCode, int | None]:
    r = c.call(ApiKey.OFFSET_FETCH, 9, {"groups": [{"group_id": group, "member_id": member_id, "member_epoch": epoch,
                                                    "topics": [{"name": topic, "partition_indexes": [0]}]}]})
    [entry] = r["groups"]
    offsets = [p["committed_offset"] for t in entry["topics"] for p in t["partitions"]]
    return ErrorCode(entry["error_code"]), offsets[0] if offsets else None


def test_offset_commit_and_fetch_v9_fencing(gbroker: Any) -> None:
    topic = unique_topic("v9w")
    create_topic(gbroker.bootstrap, topic, partitions=1)
    group = f"g-{topic}"
    member = str(uuid.uuid4())
    with coordinator(gbroker, group) as c:
        joined = heartbeat(c, group, member, 0, topics=[topic])
        assert joined["error_code"] == ErrorCode.NONE, joined
        epoch = joined["member_epoch"]
        assert epoch > 0
        assert commit(c, group, topic, member, epoch, offset=7) == ErrorCode.NONE
        assert commit(c, group, topic, member, epoch - 1) == ErrorCode.STALE_MEMBER_EPOCH
        assert commit(c, group, topic, member, epoch + 1) == ErrorCode.STALE_MEMBER_EPOCH
        assert commit(c, group, topic, str(uuid.uuid4()), epoch) == ErrorCode.UNKNOWN_MEMBER_ID
        # Only members commit while the group has members.
        assert commit(c, group, topic, "", -1) == ErrorCode.UNKNOWN_MEMBER_ID
        # v9 is the first version a KIP-848 member may commit with.
        assert commit(c, group, topic, member, epoch, version=8) == ErrorCode.UNSUPPORTED_VERSION

        assert fetch(c, group, topic, member, epoch) == (ErrorCode.NONE, 7)
        assert fetch(c, group, topic, member, epoch - 1) == (ErrorCode.STALE_MEMBER_EPOCH, None)
        assert fetch(c, group, topic, str(uuid.uuid4()), epoch) == (ErrorCode.UNKNOWN_MEMBER_ID, None)
        assert fetch(c, group, topic, None, -1) == (ErrorCode.NONE, 7)  # an admin client: not checked

        # Once the member left, anyone may commit again (the group is empty).
        left = heartbeat(c, group, member, -1)
        assert left["error_code"] == ErrorCode.NONE, left
        assert commit(c, group, topic, "", -1, offset=9) == ErrorCode.NONE
        assert fetch(c, group, topic, None, -1) == (ErrorCode.NONE, 9)


def test_offset_commit_and_fetch_v9_of_a_classic_group(gbroker: Any) -> None:
    topic = unique_topic("v9c")
    create_topic(gbroker.bootstrap, topic, partitions=2)
    group = f"classic-{topic}"
    with coordinator(gbroker, group) as c:
        member_id, generation = stable_member(c, group, topic)
        assert commit(c, group, topic, member_id, generation, offset=3) == ErrorCode.NONE
        assert commit(c, group, topic, member_id, generation + 1) == ErrorCode.ILLEGAL_GENERATION
        # A classic group ignores OffsetFetch's member fields.
        assert fetch(c, group, topic, "whoever", 42) == (ErrorCode.NONE, 3)


# Regular expression subscriptions -------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_librdkafka_hears_invalid_regular_expression(gbroker: Any) -> None:
    """librdkafka sends a "^..." subscription as the member's subscribed_topic_regex; one that
    does not compile comes back as INVALID_REGULAR_EXPRESSION (Kafka's error 128).  librdkafka
    checks patterns itself first, with a laxer engine: "x**" passes it, not RE2/J nor Python."""
    c = _consumer(gbroker.bootstrap, f"g-{unique_topic('badre')}")
    c.subscribe(["^x**"])
    try:
        def error() -> Any:
            m = c.poll(0.2)
            return m.error() if m is not None and m.error() is not None else None
        err = wait_until(error, 30, "an error event for the bad pattern")
        # librdkafka makes it fatal for the consumer, naming the broker's error 128 by its text.
        assert err.code() == KafkaError._FATAL, err
        assert "Broker: The regular expression is not valid" in err.str(), err
    finally:
        c.close()


def test_invalid_regular_expression_on_the_wire(gbroker: Any) -> None:
    prefix = unique_topic("rex")
    create_topic(gbroker.bootstrap, f"{prefix}-a", partitions=1)
    group = f"g-{prefix}"
    member = str(uuid.uuid4())
    with coordinator(gbroker, group) as c:
        bad = heartbeat(c, group, member, 0, topics=[], regex="(unclosed")
        assert bad["error_code"] == ErrorCode.INVALID_REGULAR_EXPRESSION, bad
        assert "(unclosed" in bad["error_message"]
        # Nothing was created: the group does not exist.
        assert describe(c, group)["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND
        good = heartbeat(c, group, member, 0, topics=[], regex=f"{prefix}-.*")
        assert good["error_code"] == ErrorCode.NONE, good
        epoch = good["member_epoch"]
        # A member switching to a bad pattern is refused and keeps its subscription.
        assert heartbeat(c, group, member, epoch, regex="a**")["error_code"] == ErrorCode.INVALID_REGULAR_EXPRESSION
        [m] = describe(c, group)["members"]
        assert m["subscribed_topic_regex"] == f"{prefix}-.*" and m["member_epoch"] == epoch
