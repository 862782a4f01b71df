"""KIP-848 groups survive a coordinator restart: their state is written to `__consumer_offsets`
as Kafka's consumer-group records (key versions 3-8) and replayed at load, so librdkafka
group.protocol=consumer members carry on at their epoch and assignment after a broker restart
(no rejoin), and a member that is gone expires with its session timeout after the restart.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pyk.coordinator.consumer_group import ConsumerGroup, MemberState
from pyk.coordinator.consumer_group_records import group_records, restore_group
from pyk.coordinator.records import (
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    ConsumerGroupKey,
    decode_consumer_group_value,
    decode_key,
    encode_consumer_group_key,
)
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.groups.conftest import GROUP_OVERRIDES, Members, describe_members, wait_until
from tests.groups.test_consumer_group_state import group_heartbeat
from tests.groups.test_kip848_apis import commit, describe, heartbeat
from tests.groups.test_persistence import read_offsets_topic
from tests.groups.test_rebalance import Feeder, balanced, consumed_values, owned_by
from tests.groups.test_wire import coordinator
from tests.helpers import create_topic, unique_topic

T = uuid.UUID(int=7)
U = uuid.UUID(int=8)
TOPICS = {"t": (T, 4), "u": (U, 2)}
SESSION_S = int(GROUP_OVERRIDES["group.consumer.session.timeout.ms"]) / 1000


def _replay(records: dict[ConsumerGroupKey, bytes]) -> dict[ConsumerGroupKey, Any]:
    """What a partition's replay makes of the records (keys and values through their bytes)."""
    out = {}
    for key, value in records.items():
        decoded = decode_key(encode_consumer_group_key(key))
        assert decoded == key
        out[decoded] = decode_consumer_group_value(decoded.type, value)
    return out


def test_records_rebuild_the_group_mid_reconciliation() -> None:
    g = ConsumerGroup("g")

    def hb(member_id: str, epoch: int, **extra: Any) -> dict[str, Any]:
        request = {"group_id": "g", "member_id": member_id, "member_epoch": epoch, "rebalance_timeout_ms": 9000,
                   **extra}
        return group_heartbeat(g, request, TOPICS.get, lambda: "x", "client", "/10.0.0.1", topic_names=lambda: TOPICS)[0]

    a = hb("a", 0, subscribed_topic_names=["t"], rack_id="r1", topic_partitions=[])
    hb("b", 0, subscribed_topic_names=[], subscribed_topic_regex="u|t", instance_id="i-b", topic_partitions=[])
    hb("a", a["member_epoch"])  # a is told to give partitions up to b: mid-reconciliation
    assert g.members["a"].state is MemberState.UNREVOKED_PARTITIONS

    back = restore_group("g", _replay(group_records(g)), 10)
    assert (back.group_epoch, back.assignment_epoch) == (g.group_epoch, g.assignment_epoch)
    assert back.topology == g.topology and back.target == g.target and back.static_members == g.static_members
    for mid, m in g.members.items():
        r = back.members[mid]
        assert (r.epoch, r.previous_epoch, r.state, r.assigned, r.revoking) == (
            m.epoch, m.previous_epoch, m.state, m.assigned, m.revoking)
        assert (r.instance_id, r.rack_id, r.client_id, r.client_host, r.subscribed, r.matched,
                r.rebalance_timeout_ms) == (m.instance_id, m.rack_id, m.client_id, m.client_host, m.subscribed,
                                            m.matched, m.rebalance_timeout_ms)
        assert (r.regex.pattern if r.regex else None) == (m.regex.pattern if m.regex else None)
    # The restored group encodes to the very same records: nothing to write after a restart.
    assert group_records(back) == group_records(g)
    # And it carries on: a's acknowledgement moves it to the new epoch, as it would have.
    body, _, _ = group_heartbeat(back, {"group_id": "g", "member_id": "a", "member_epoch": a["member_epoch"],
                                 "topic_partitions": [{"topic_id": T, "partitions": sorted(back.members["a"].assigned[T])}]},
                                TOPICS.get, lambda: "x", topic_names=lambda: TOPICS)
    assert body["member_epoch"] == back.assignment_epoch


def _member_epochs(entry: dict[str, Any]) -> dict[str, tuple[int, frozenset[tuple[str, int]]]]:
    return {m["member_id"]: (m["member_epoch"], frozenset((t["topic_name"], p) for t in m["assignment"]["topic_partitions"]
                                                          for p in t["partitions"]))
            for m in entry["members"]}


@pytest.mark.timeout(240)
def test_members_carry_on_across_broker_restarts(broker_factory: Any, members: Members) -> None:
    b = broker_factory(overrides=GROUP_OVERRIDES)
    topic = unique_topic("kip848-restart")
    group = f"g-{topic}"
    create_topic(b.bootstrap, topic, partitions=4)
    ms = [members.start(b.bootstrap, group, topic, protocol="consumer") for _ in range(2)]
    wait_until(lambda: balanced(ms, 4) and all(len(o) == 2 for o in owned_by(ms)), 60,
               "two consumer-protocol members with 2 partitions each", detail=lambda: describe_members(ms))

    def stable() -> dict[str, Any] | None:
        with coordinator(b, group) as c:
            entry = describe(c, group)
        return entry if entry["error_code"] == ErrorCode.NONE and entry["group_state"] == "Stable" else None

    before = wait_until(stable, 30, "the group to be Stable")
    epochs = _member_epochs(before)
    assert len(epochs) == 2
    events_before = [len(m.events()) for m in ms]

    b.restart()
    # Positive signal: each member's first heartbeat after the restart came with its old epoch
    # and was taken as is (the coordinator logs a resumed member; a rejoin would use epoch 0).
    wait_until(lambda: all(f"member {mid} resumed at epoch {epoch}" in b.log_text()
                           for mid, (epoch, _) in epochs.items()), 60,
               "both members to resume at their epochs", detail=lambda: b.log_tail())
    after = wait_until(stable, 30, "the group to be Stable after the restart")
    assert _member_epochs(after) == epochs
    assert after["group_epoch"] == before["group_epoch"]
    # They keep consuming what is produced now, and neither was told to give anything up.
    feeder = Feeder(b.bootstrap, topic, 4, per_second=100)
    wait_until(lambda: len(consumed_values(ms)) >= 40, 60, "the members to consume after the restart",
               detail=lambda: describe_members(ms))
    for m, seen in zip(ms, events_before, strict=True):
        later = [e for e in m.events()[seen:] if e["ev"] != "msg"]
        assert not later, f"rebalance events after the restart: {later}"
    feeder.stop()

    # A member that is gone (killed, no leave) is loaded with the group after the next restart
    # and expires with its session timeout; the survivor then owns everything.
    dead_id = next(mid for mid, (_, parts) in epochs.items() if parts == {(topic, p) for p in ms[1].owned()})
    ms[1].kill()
    b.restart()
    # (logged at both loads: the first restart's and this one's)
    assert b.log_text().count(f"consumer group {group} loaded: group epoch {before['group_epoch']}, 2 members") == 2
    wait_until(lambda: len(ms[0].owned()) == 4, SESSION_S + 45, "the surviving member to own all 4 partitions",
               detail=lambda: describe_members(ms))
    assert list(_member_epochs(_described(b, group) or {"members": []})) != [dead_id]
    assert f"member {dead_id} fenced: no heartbeat" in b.log_text()

    # On disk: the dead member's records were tombstoned (its current-assignment key's last
    # value is null), the survivor's are there.
    last: dict[ConsumerGroupKey, Any] = {}
    for _partition, key, value in read_offsets_topic(b.bootstrap, int(GROUP_OVERRIDES["offsets.topic.num.partitions"])):
        if isinstance(key, ConsumerGroupKey) and key.group == group:
            last[key] = value
    assert last[ConsumerGroupKey(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT, group, dead_id)] is None
    alive = [k for k, v in last.items() if k.type == CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT and v is not None]
    assert len(alive) == 1 and alive[0].member_id != dead_id
    assert ms[0].stop() == 0, ms[0].stderr()


def _described(b: Any, group: str) -> dict[str, Any] | None:
    with coordinator(b, group) as c:
        entry = describe(c, group)
    return entry if entry["error_code"] == ErrorCode.NONE else None


def test_deleting_a_consumer_group_tombstones_its_records(gbroker: Any) -> None:
    topic = unique_topic("kip848-del")
    create_topic(gbroker.bootstrap, topic, partitions=1)
    group = f"g-{topic}"
    member = str(uuid.uuid4())
    with coordinator(gbroker, group) as c:
        joined = heartbeat(c, group, member, 0, topics=[topic])
        assert joined["error_code"] == ErrorCode.NONE, joined
        assert commit(c, group, topic, member, joined["member_epoch"], offset=3) == ErrorCode.NONE
        deleted = c.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]})
        assert deleted["results"][0]["error_code"] == ErrorCode.NON_EMPTY_GROUP  # it has a member
        assert heartbeat(c, group, member, -1)["error_code"] == ErrorCode.NONE
        # Left: the group is an empty consumer group (its offsets keep it).
        assert describe(c, group)["group_state"] == "Empty"
        deleted = c.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]})
        assert deleted["results"][0]["error_code"] == ErrorCode.NONE
        assert describe(c, group)["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND
    last: dict[Any, Any] = {}
    for _partition, key, value in read_offsets_topic(gbroker.bootstrap,
                                                      int(GROUP_OVERRIDES["offsets.topic.num.partitions"])):
        if getattr(key, "group", None) == group:
            last[key] = value
    consumer_keys = {k for k in last if isinstance(k, ConsumerGroupKey)}
    # Every record type was written (3-8), and the last word on each is a tombstone.
    assert {k.type for k in consumer_keys} == set(range(3, 9))
    assert all(last[k] is None for k in last), {k: v for k, v in last.items() if v is not None}
