"""The consumer group protocol of KIP-848 with a real client: librdkafka (confluent-kafka) with
`group.protocol=consumer` against `pyk serve`.  The broker assigns the partitions; members
share them, a member leaving (or dying) gives its partitions to the others incrementally, and
committed offsets (member epoch as generation) survive a broker restart.

Members run as processes (tests/groups/member.py --protocol consumer) so one can be killed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.groups.conftest import GROUP_OVERRIDES, Members, describe_members, wait_until
from tests.groups.test_persistence import consume, fill
from tests.groups.test_rebalance import Feeder, balanced, consumed_values, owned_by, revoked
from tests.groups.test_wire import coordinator
from tests.helpers import create_topic, unique_topic

SESSION_S = int(GROUP_OVERRIDES["group.consumer.session.timeout.ms"]) / 1000


def _described(gbroker: Any, group: str) -> dict[str, Any]:
    """The group as its coordinator holds it (ConsumerGroupDescribe v1)."""
    with coordinator(gbroker, group) as c:
        [entry] = c.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [group]})["groups"]
    assert entry["error_code"] == ErrorCode.NONE, entry
    return entry


@pytest.mark.timeout(180)
def test_members_share_leave_and_die(gbroker: Any, members: Members) -> None:
    topic = unique_topic("kip848")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=6)
    feeder = Feeder(gbroker.bootstrap, topic, 6, per_second=200)
    started = time.monotonic()
    ms = [members.start(gbroker.bootstrap, group, topic, protocol="consumer") for _ in range(3)]
    wait_until(lambda: balanced(ms, 6) and all(len(o) == 2 for o in owned_by(ms)), 45,
               "three consumer-protocol members with 2 partitions each", detail=lambda: describe_members(ms))
    to_balanced = time.monotonic() - started
    wait_until(lambda: all(m.messages() for m in ms), 20, "every member consuming",
               detail=lambda: describe_members(ms))

    # A clean leave (epoch -1): its two partitions go to the others at once, and the others
    # keep what they had (incremental: nothing they still own was revoked).
    kept = owned_by(ms[1:])
    revokes_before = [len(revoked(m)) for m in ms[1:]]
    assert ms[0].stop() == 0, ms[0].stderr()
    survivors = ms[1:]
    wait_until(lambda: balanced(survivors, 6) and all(len(o) == 3 for o in owned_by(survivors)), 30,
               "two members with 3 partitions each after a leave", detail=lambda: describe_members(survivors))
    for m, before, had in zip(survivors, revokes_before, kept, strict=True):
        assert len(revoked(m)) == before, m.events()
        assert had <= m.owned()

    # A death (no leave): the last member takes over only once the session timed out.
    killed_at = time.monotonic()
    survivors[0].kill()
    last = survivors[1]
    wait_until(lambda: len(last.owned()) == 6, SESSION_S + 30, "the last member to own all 6 partitions",
               detail=lambda: describe_members(survivors))
    takeover = time.monotonic() - killed_at
    assert takeover >= SESSION_S * 0.8, "partitions moved before the session timeout"

    total = feeder.stop()
    wait_until(lambda: consumed_values(ms) >= set(range(total)), 45, "every produced message to be consumed",
               detail=lambda: describe_members(ms))
    assert last.stop() == 0, last.stderr()
    values = [int(e["v"]) for m in ms for e in m.messages()]
    assert set(values) == set(range(total))
    # Commits after processing: only the killed member's uncommitted tail can come again.
    assert len(values) - total < 200, f"{len(values) - total} duplicates"
    errors = [e for m in ms for e in m.events() if e["ev"] == "error" and e.get("fatal")]
    assert not errors, errors
    print(f"\n[KIP-848] 3 member processes started -> 2 partitions each: {to_balanced:.2f}s; takeover after kill: "
          f"{takeover:.2f}s (session {SESSION_S}s); {total} messages, {len(values) - total} redelivered")


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, "fetch.wait.max.ms": 50})


@pytest.mark.timeout(120)
def test_commits_resume_after_broker_restart(broker_factory: Any) -> None:
    b = broker_factory(overrides=GROUP_OVERRIDES)
    topic, group = unique_topic("kip848-resume"), f"g-{time.time_ns()}"
    create_topic(b.bootstrap, topic, partitions=3)
    fill(b.bootstrap, topic, 3, 10)
    c = _consumer(b.bootstrap, group)
    c.subscribe([topic])
    first = consume(c, 15, timeout=30)
    assert len(first) == 15
    positions: dict[int, int] = {}
    for m in first:
        positions[m.partition()] = max(positions.get(m.partition(), 0), m.offset() + 1)
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in positions.items()], asynchronous=False)
    c.close()
    b.restart()
    c = _consumer(b.bootstrap, group)
    c.subscribe([topic])
    rest = consume(c, 30 - 15, timeout=30)
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == positions
    seen = {(m.partition(), m.offset()) for m in first}
    again = {(m.partition(), m.offset()) for m in rest}
    assert not seen & again, "messages before the committed offset were delivered again"
    assert len(seen | again) == 30


@pytest.mark.timeout(150)
def test_static_member_restart_keeps_its_partitions(gbroker: Any, members: Members) -> None:
    topic = unique_topic("kip848-static")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=4)
    feeder = Feeder(gbroker.bootstrap, topic, 4, per_second=100)
    ms = [members.start(gbroker.bootstrap, group, topic, protocol="consumer", instance_id=f"s{i}") for i in range(2)]
    wait_until(lambda: balanced(ms, 4) and all(len(o) == 2 for o in owned_by(ms)), 45,
               "two static members with 2 partitions each", detail=lambda: describe_members(ms))
    had = ms[1].owned()
    events_before = len([e for e in ms[0].events() if e["ev"] != "msg"])
    group_epoch = _described(gbroker, group)["group_epoch"]
    # A static member closing leaves with epoch -2: it stays in the group, partitions and all...
    assert ms[1].stop() == 0, ms[1].stderr()
    described = _described(gbroker, group)
    [left] = [m for m in described["members"] if m["instance_id"] == "s1"]
    assert left["member_epoch"] == -2, described  # the broker took the static leave
    assert described["group_epoch"] == group_epoch, described  # ... and started no rebalance
    assert {p for t in left["assignment"]["topic_partitions"] for p in t["partitions"]} == had
    assert len(ms[0].owned()) == 2, describe_members(ms)
    # ... and its next incarnation gets them straight back; the other member never noticed.
    back = members.start(gbroker.bootstrap, group, topic, protocol="consumer", instance_id="s1")
    wait_until(lambda: back.owned() == had, 30, "the restarted static member to get its partitions back",
               detail=lambda: describe_members([ms[0], back]))
    assert len([e for e in ms[0].events() if e["ev"] != "msg"]) == events_before, ms[0].events()
    # Gone for good: once its session ends, the other member takes everything.
    assert back.stop() == 0, back.stderr()
    wait_until(lambda: len(ms[0].owned()) == 4, SESSION_S + 30, "the remaining member to own all 4 partitions",
               detail=lambda: describe_members([ms[0], back]))
    total = feeder.stop()
    everyone = [ms[0], ms[1], back]
    wait_until(lambda: consumed_values(everyone) >= set(range(total)), 45, "every produced message to be consumed",
               detail=lambda: describe_members(everyone))
    assert ms[0].stop() == 0, ms[0].stderr()


@pytest.mark.timeout(120)
def test_regex_subscription(gbroker: Any) -> None:
    prefix = unique_topic("kip848re")
    create_topic(gbroker.bootstrap, f"{prefix}-a", partitions=2)
    fill(gbroker.bootstrap, f"{prefix}-a", 2, 5)
    c = _consumer(gbroker.bootstrap, f"g-{prefix}")
    c.subscribe([f"^{prefix}-.*"])
    try:
        got = consume(c, 10, timeout=30)
        assert {(m.topic(), m.partition()) for m in got} == {(f"{prefix}-a", 0), (f"{prefix}-a", 1)}
        # A topic created later that the regex matches joins the assignment.
        create_topic(gbroker.bootstrap, f"{prefix}-b", partitions=1)
        fill(gbroker.bootstrap, f"{prefix}-b", 1, 5)
        more = consume(c, 5, timeout=45)
        assert {m.topic() for m in more} == {f"{prefix}-b"}
        # AdminClient describes the group (DescribeGroups in the classic shape) with its member
        # and that member's current assignment.
        admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
        [future] = admin.describe_consumer_groups([f"g-{prefix}"]).values()
        described = future.result(timeout=20)
        assert described.state == ConsumerGroupState.STABLE
        [member] = described.members
        assert {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} == {
            (f"{prefix}-a", 0), (f"{prefix}-a", 1), (f"{prefix}-b", 0)}
    finally:
        c.close()
