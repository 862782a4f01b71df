"""The consumer protocol's state machine (KIP-848), in process: epochs, the uniform assignor and
incremental reconciliation (a partition reaches its new owner only after the old owner's
heartbeat shows it was released), fencing, leaving and static members."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from pyk.coordinator.api import ConsumerGroupHeartbeatRequest, TopicPartitions
from pyk.coordinator.consumer_group import ConsumerGroup, ConsumerMember, MemberState, uniform_assign
from pyk.errors import ErrorCode, KafkaError

T = uuid.UUID(int=1)
U = uuid.UUID(int=2)
TOPICS = {"t": (T, 6), "u": (U, 2)}


def lookup(name: str) -> tuple[uuid.UUID, int] | None:
    return TOPICS.get(name)


def request_of(fields: dict[str, Any]) -> ConsumerGroupHeartbeatRequest:
    """A ConsumerGroupHeartbeat request from its wire-shaped fields."""
    owned = fields.get("topic_partitions")
    return ConsumerGroupHeartbeatRequest(**{**fields, "topic_partitions": None if owned is None else [
        TopicPartitions(t["topic_id"], t["partitions"]) for t in owned]})


def group_heartbeat(group: ConsumerGroup, fields: dict[str, Any], *args: Any,
              **kw: Any) -> tuple[dict[str, Any], ConsumerMember | None, list[ConsumerMember]]:
    """ConsumerGroup.heartbeat on wire-shaped fields, its result as a dict (Kafka's field names)."""
    result, member, removed = group.heartbeat(request_of(fields), *args, **kw)
    return dataclasses.asdict(result), member, removed


def hb(group: ConsumerGroup, member_id: str, epoch: int, owned: set[int] | None = None,
       topics: list[str] | None = None, instance_id: str | None = None) -> dict[str, Any]:
    request = {
        "group_id": "g", "member_id": member_id, "member_epoch": epoch, "instance_id": instance_id,
        "rebalance_timeout_ms": 30000 if epoch == 0 else -1,
        "subscribed_topic_names": topics if topics is not None else (["t"] if epoch == 0 else None),
        "topic_partitions": None if owned is None else ([{"topic_id": T, "partitions": sorted(owned)}] if owned else []),
    }
    body, _member, _removed = group_heartbeat(group, request, lookup, lambda: "generated")
    return body


def parts(body: dict[str, Any]) -> set[int] | None:
    if body["assignment"] is None:
        return None
    return {p for tp in body["assignment"]["topic_partitions"] if tp["topic_id"] == T for p in tp["partitions"]}


def held(group: ConsumerGroup) -> dict[str, set[int]]:
    return {mid: {p for _, p in m.holds()} for mid, m in group.members.items()}


def test_first_member_gets_everything_at_once():
    g = ConsumerGroup("g")
    body = hb(g, "a", 0, owned=set())
    assert body["member_epoch"] == g.group_epoch == g.assignment_epoch
    assert parts(body) == set(range(6))
    assert g.members["a"].state is MemberState.STABLE
    assert g.state_name == "Stable"
    # A plain heartbeat changes nothing and carries no assignment.
    again = hb(g, "a", body["member_epoch"])
    assert again["assignment"] is None and again["member_epoch"] == body["member_epoch"]


def test_partitions_move_only_after_the_old_owner_revokes():
    g = ConsumerGroup("g")
    a_epoch = hb(g, "a", 0, owned=set())["member_epoch"]
    # b joins: the target splits 3/3, but everything is still a's.
    b = hb(g, "b", 0, owned=set())
    assert b["member_epoch"] == g.assignment_epoch > a_epoch
    assert parts(b) == set()
    assert g.members["b"].state is MemberState.UNRELEASED_PARTITIONS
    # a is told to keep 0-2 (its epoch stays until it has let 3-5 go).
    a = hb(g, "a", a_epoch)
    assert parts(a) == {0, 1, 2} and a["member_epoch"] == a_epoch
    assert g.members["a"].state is MemberState.UNREVOKED_PARTITIONS
    # b asks again before a revoked: nothing yet, and no partition is held twice.
    assert parts(hb(g, "b", b["member_epoch"], owned=set())) in (None, set())
    h = held(g)
    assert h["a"] == set(range(6)) and h["b"] == set()
    # a still reports owning 3: not acknowledged.
    assert hb(g, "a", a_epoch, owned={0, 1, 2, 3})["member_epoch"] == a_epoch
    # a acknowledges: it moves to the new epoch, then b gets 3-5.
    a = hb(g, "a", a_epoch, owned={0, 1, 2})
    assert a["member_epoch"] == g.assignment_epoch
    assert g.members["a"].state is MemberState.STABLE
    b = hb(g, "b", b["member_epoch"], owned=set())
    assert parts(b) == {3, 4, 5}
    assert g.members["b"].state is MemberState.STABLE
    assert g.state_name == "Stable"
    assert held(g) == {"a": {0, 1, 2}, "b": {3, 4, 5}}


def converge(g: ConsumerGroup, epochs: dict[str, int], owned: dict[str, set[int]], rounds: int = 6) -> None:
    """Heartbeats every member a few times, each reporting what it was last told to own."""
    for _ in range(rounds):
        for mid in sorted(epochs):
            body = hb(g, mid, epochs[mid], owned=owned[mid])
            epochs[mid] = body["member_epoch"]
            if parts(body) is not None:
                owned[mid] = parts(body)
            # Never two owners at once.
            all_held = [p for m in g.members.values() for _, p in m.holds()]
            assert len(all_held) == len(set(all_held))


def test_three_members_balance_and_a_leaver_spreads_its_share_stickily():
    g = ConsumerGroup("g")
    epochs, owned = {}, {}
    for mid in ("a", "b", "c"):
        body = hb(g, mid, 0, owned=set())
        epochs[mid], owned[mid] = body["member_epoch"], parts(body) or set()
    converge(g, epochs, owned)
    assert g.state_name == "Stable"
    assert sorted(len(p) for p in owned.values()) == [2, 2, 2]
    assert set().union(*owned.values()) == set(range(6))
    before = dict(owned)
    left = hb(g, "b", -1)
    assert left["member_epoch"] == -1 and "b" not in g.members
    del epochs["b"], owned["b"]
    converge(g, epochs, owned)
    assert sorted(len(p) for p in owned.values()) == [3, 3]
    # Sticky: nobody lost a partition it had.
    assert before["a"] <= owned["a"] and before["c"] <= owned["c"]


def test_epoch_fencing_and_unknown_members():
    g = ConsumerGroup("g")
    epoch = hb(g, "a", 0, owned=set())["member_epoch"]
    with pytest.raises(KafkaError) as exc:
        hb(g, "a", epoch + 1)
    assert exc.value.code is ErrorCode.FENCED_MEMBER_EPOCH
    with pytest.raises(KafkaError) as exc:
        hb(g, "nobody", 3)
    assert exc.value.code is ErrorCode.UNKNOWN_MEMBER_ID
    # A member one epoch behind that owns only what it is assigned lost a response: accepted.
    hb(g, "b", 0, owned=set())
    a = g.members["a"]
    hb(g, "a", epoch, owned={0, 1, 2})
    assert a.epoch > epoch and a.previous_epoch == epoch
    assert hb(g, "a", epoch, owned={0, 1, 2})["member_epoch"] == a.epoch
    with pytest.raises(KafkaError) as exc:  # ... but not when it claims more than that
        hb(g, "a", epoch, owned={0, 1, 2, 3})
    assert exc.value.code is ErrorCode.FENCED_MEMBER_EPOCH


def test_rejoin_with_epoch_zero_starts_over_and_gets_its_target_back():
    g = ConsumerGroup("g")
    hb(g, "a", 0, owned=set())
    body = hb(g, "a", 0, owned=set())
    assert parts(body) == set(range(6)) and body["member_epoch"] == g.assignment_epoch


def test_expired_member_frees_its_partitions():
    g = ConsumerGroup("g")
    epochs, owned = {}, {}
    for mid in ("a", "b"):
        body = hb(g, mid, 0, owned=set())
        epochs[mid], owned[mid] = body["member_epoch"], parts(body) or set()
    converge(g, epochs, owned)
    g.remove("b")
    body = hb(g, "a", epochs["a"], owned=owned["a"])
    assert parts(body) == set(range(6))


def test_static_member_leaves_and_returns_without_a_rebalance():
    g = ConsumerGroup("g")
    epochs, owned = {}, {}
    for mid, inst in (("a", "ia"), ("b", "ib")):
        body = hb(g, mid, 0, owned=set(), instance_id=inst)
        epochs[mid], owned[mid] = body["member_epoch"], parts(body) or set()
    converge(g, epochs, owned)
    group_epoch = g.group_epoch
    assert hb(g, "b", -2, instance_id="ib")["member_epoch"] == -2
    assert g.group_epoch == group_epoch  # still a member, its partitions stay with it
    # Another process with the same instance id while b is still "active" would be refused; b
    # has left, so b2 takes over b's partitions at once and the group epoch does not move.
    body = hb(g, "b2", 0, owned=set(), instance_id="ib")
    assert parts(body) == owned["b"]
    assert "b" not in g.members and g.group_epoch == group_epoch
    with pytest.raises(KafkaError) as exc:
        hb(g, "b3", 0, owned=set(), instance_id="ib")
    assert exc.value.code is ErrorCode.UNRELEASED_INSTANCE_ID


def test_subscription_change_and_new_topic():
    g = ConsumerGroup("g")
    epoch = hb(g, "a", 0, owned=set())["member_epoch"]
    request = {"group_id": "g", "member_id": "a", "member_epoch": epoch, "subscribed_topic_names": ["t", "u"],
               "topic_partitions": [{"topic_id": T, "partitions": list(range(6))}]}
    body, _, _ = group_heartbeat(g, request, lookup, lambda: "x")
    got = {(tp["topic_id"], p) for tp in body["assignment"]["topic_partitions"] for p in tp["partitions"]}
    assert got == {(T, p) for p in range(6)} | {(U, 0), (U, 1)}
    assert body["member_epoch"] > epoch


def test_uniform_assignor_balances_and_respects_subscriptions():
    g = ConsumerGroup("g")
    for mid, topics in (("a", ["t"]), ("b", ["t", "u"]), ("c", ["u"])):
        hb(g, mid, 0, owned=set(), topics=topics)
    target = uniform_assign(g.members, {}, lookup)
    flat = {mid: {(t, p) for t, ps in a.items() for p in ps} for mid, a in target.items()}
    assert set().union(*flat.values()) == {(T, p) for p in range(6)} | {(U, 0), (U, 1)}
    assert sum(len(v) for v in flat.values()) == 8  # each partition once
    assert all(t == T for t, _ in flat["a"]) and all(t == U for t, _ in flat["c"])
    assert max(len(v) for v in flat.values()) - min(len(v) for v in flat.values()) <= 2


def test_bad_requests():
    g = ConsumerGroup("g", max_size=1)
    with pytest.raises(KafkaError) as exc:
        group_heartbeat(g, {"group_id": "g", "member_id": "a", "member_epoch": 0}, lookup, lambda: "x")
    assert exc.value.code is ErrorCode.INVALID_REQUEST  # joining without a subscription
    with pytest.raises(KafkaError) as exc:
        group_heartbeat(g, {"group_id": "g", "member_id": "a", "member_epoch": 0, "subscribed_topic_names": ["t"],
                     "server_assignor": "magic"}, lookup, lambda: "x")
    assert exc.value.code is ErrorCode.UNSUPPORTED_ASSIGNOR
    hb(g, "a", 0, owned=set())
    with pytest.raises(KafkaError) as exc:
        hb(g, "b", 0, owned=set())
    assert exc.value.code is ErrorCode.GROUP_MAX_SIZE_REACHED
    # v0 members join with an empty id and are given one.
    g2 = ConsumerGroup("g2")
    assert hb(g2, "", 0, owned=set())["member_id"] == "generated"


# The GroupCoordinator's side: timers, OffsetCommit fencing, classic vs consumer groups -------
def _cgh(c: Any, group: str, member_id: str, epoch: int, owned: list[int] | None = None) -> dict[str, Any]:
    from tests.groups.test_coordinator import TOPIC
    topic_id = c.host.topic(TOPIC).topic_id
    return dataclasses.asdict(c.consumer.heartbeat(request_of({
        "group_id": group, "member_id": member_id, "member_epoch": epoch, "rebalance_timeout_ms": 20_000,
        "subscribed_topic_names": [TOPIC] if epoch == 0 else None,
        "topic_partitions": None if owned is None else [{"topic_id": topic_id, "partitions": owned}]})))


def test_coordinator_sessions_commits_and_protocol_exclusion(tmp_path: Any) -> None:
    from pyk.coordinator.consumer_protocol import decode_assignment, decode_subscription
    from tests.groups.test_coordinator import TOPIC, commit, join, run, until

    async def scenario(c: Any, broker: Any, clock: Any) -> None:
        a = _cgh(c, "cg", "a", 0, owned=[])
        assert a["error_code"] == ErrorCode.NONE and a["heartbeat_interval_ms"] == 50
        assert len(a["assignment"]["topic_partitions"][0]["partitions"]) == 4
        epoch = a["member_epoch"]
        # Commits: with the member epoch as the generation; stale epochs and strangers refused.
        # (OffsetCommit v9: the first version a consumer-protocol member may use.)
        assert commit(c, "cg", 5, generation=epoch, member_id="a", version=9) == ErrorCode.NONE
        assert commit(c, "cg", 5, generation=epoch, member_id="a") == ErrorCode.UNSUPPORTED_VERSION
        assert commit(c, "cg", 6, generation=epoch + 1, member_id="a", version=9) == ErrorCode.STALE_MEMBER_EPOCH
        assert commit(c, "cg", 6, generation=epoch, member_id="zz", version=9) == ErrorCode.UNKNOWN_MEMBER_ID
        assert commit(c, "cg", 6) == ErrorCode.UNKNOWN_MEMBER_ID  # no member id while there are members
        # A classic member cannot join a consumer group with members, nor the reverse.
        assert (await join(c, "cg"))["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        classic = await join(c, "classic")
        assert classic["error_code"] == ErrorCode.NONE
        assert _cgh(c, "classic", "x", 0, owned=[])["error_code"] == ErrorCode.GROUP_ID_NOT_FOUND
        assert {g.group_id: (g.protocol_type, g.group_state) for g in c.list_groups([])}["cg"] == (
            "consumer", "Stable")
        described = c.describe_group("cg")
        assert (described.group_state, described.protocol_type) == ("Stable", "consumer")
        [m] = described.members
        assert m.member_id == "a" and decode_subscription(m.member_metadata).topics == [TOPIC]
        assert decode_assignment(m.member_assignment) == {TOPIC: [0, 1, 2, 3]}
        # b joins; a owes a revocation and never sends one: its rebalance timeout (20 s)
        # fences it although it keeps heartbeating; b then owns everything.
        b = _cgh(c, "cg", "b", 0, owned=[])
        assert b["assignment"]["topic_partitions"] == []
        for step in range(8):  # a heartbeat every 5 s (the loop's clock), 40 s in all
            r = _cgh(c, "cg", "a", epoch, owned=[0, 1, 2, 3])
            if step < 4:
                assert r["error_code"] == ErrorCode.NONE, (step, r)  # within its rebalance timeout
            _cgh(c, "cg", "b", b["member_epoch"], owned=[])  # b stays alive, owning nothing yet
            await clock.advance(5_000)
        assert r["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        b = _cgh(c, "cg", "b", b["member_epoch"], owned=[])
        assert b["assignment"] is not None, b
        assert sorted(b["assignment"]["topic_partitions"][0]["partitions"]) == [0, 1, 2, 3]
        # b goes silent: its session (30 s) ends, the group empties, its offsets stay.
        await clock.advance(30_001)
        await until(lambda: c.groups["cg"].is_empty, "b's session to end")
        assert _cgh(c, "cg", "b", b["member_epoch"])["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        assert c.groups["cg"].is_empty and c.groups["cg"].offsets
        assert commit(c, "cg", 7) == ErrorCode.NONE  # an empty group takes plain commits again
        # ... and a classic member may now use the group.
        assert (await join(c, "cg"))["error_code"] == ErrorCode.NONE

    run(tmp_path, scenario, **{"group.consumer.heartbeat.interval.ms": "50",
                               "group.consumer.session.timeout.ms": "30000"})


def test_regex_subscription_follows_new_topics():
    g = ConsumerGroup("g")
    names = ["t"]
    request = {"group_id": "g", "member_id": "a", "member_epoch": 0, "subscribed_topic_names": [],
               "subscribed_topic_regex": "t|u", "topic_partitions": []}
    body, _, _ = group_heartbeat(g, request, lookup, lambda: "x", topic_names=lambda: names)
    assert parts(body) == set(range(6)) and g.members["a"].topics == {"t"}
    epoch = body["member_epoch"]
    names.append("u")  # a topic the regex matches appears: the group epoch moves, "a" gets it
    body, _, _ = group_heartbeat(g, {"group_id": "g", "member_id": "a", "member_epoch": epoch,
                              "topic_partitions": [{"topic_id": T, "partitions": list(range(6))}]},
                             lookup, lambda: "x", topic_names=lambda: names)
    got = {(tp["topic_id"], p) for tp in body["assignment"]["topic_partitions"] for p in tp["partitions"]}
    assert got == {(T, p) for p in range(6)} | {(U, 0), (U, 1)} and body["member_epoch"] > epoch
    with pytest.raises(KafkaError) as exc:
        group_heartbeat(g, {"group_id": "g", "member_id": "b", "member_epoch": 0, "subscribed_topic_regex": "(",
                     "topic_partitions": []}, lookup, lambda: "x", topic_names=lambda: names)
    assert exc.value.code is ErrorCode.INVALID_REGULAR_EXPRESSION
    assert "b" not in g.members
