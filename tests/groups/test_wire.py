"""The group APIs at the protocol level: the errors real clients rely on for bad input, and every
implemented version of every group API answered (old versions' field rules included)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pyk.errors import ErrorCode
from pyk.protocol import SUPPORTED
from pyk.protocol.apis import ApiKey
from tests.groups.wire import Client, assignment, subscription
from tests.helpers import create_topic, unique_topic

SESSION = 2000


@pytest.fixture(scope="module")
def topic(gbroker: Any) -> str:
    name = unique_topic("wire")
    create_topic(gbroker.bootstrap, name, partitions=2)
    return name


def coordinator(gbroker: Any, group: str) -> Client:
    """A connection to the group's coordinator (FindCoordinator through the bootstrap node)."""
    with Client(gbroker.bootstrap) as c:
        for _ in range(50):
            r = c.call(ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": 0})
            if r["error_code"] == ErrorCode.NONE:
                return Client(f"{r['host']}:{r['port']}")
            time.sleep(0.1)
    raise AssertionError(f"no coordinator for {group}: {r}")


def join(c: Client, group: str, topic: str, member_id: str = "", version: int = 5, session: int = SESSION,
         protocol_type: str = "consumer", instance: str | None = None) -> dict[str, Any]:
    body = {"group_id": group, "session_timeout_ms": session, "rebalance_timeout_ms": 5000, "member_id": member_id,
            "group_instance_id": instance, "protocol_type": protocol_type,
            "protocols": [{"name": "range", "metadata": subscription([topic])}]}
    r = c.call(ApiKey.JOIN_GROUP, version, body)
    if r["error_code"] == ErrorCode.MEMBER_ID_REQUIRED:
        body["member_id"] = r["member_id"]
        r = c.call(ApiKey.JOIN_GROUP, version, body)
    return r


def stable_member(c: Client, group: str, topic: str) -> tuple[str, int]:
    j = join(c, group, topic)
    assert j["error_code"] == ErrorCode.NONE, j
    s = c.call(ApiKey.SYNC_GROUP, 3, {"group_id": group, "generation_id": j["generation_id"],
                                      "member_id": j["member_id"], "group_instance_id": None,
                                      "assignments": [{"member_id": j["member_id"],
                                                       "assignment": assignment({topic: [0, 1]})}]})
    assert s["error_code"] == ErrorCode.NONE, s
    return j["member_id"], j["generation_id"]


def commit(c: Client, group: str, topic: str, generation: int, member_id: str, offset: int = 1) -> ErrorCode:
    r = c.call(ApiKey.OFFSET_COMMIT, 7, {
        "group_id": group, "generation_id_or_member_epoch": generation, "member_id": member_id,
        "group_instance_id": None,
        "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                   "committed_leader_epoch": -1, "committed_metadata": None}]}]})
    return ErrorCode(r["topics"][0]["partitions"][0]["error_code"])


def test_join_with_an_unknown_or_inconsistent_protocol_type(gbroker: Any, topic: str) -> None:
    group = f"bad-type-{time.time_ns()}"
    with coordinator(gbroker, group) as c:
        assert join(c, group, topic, protocol_type="")["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        stable_member(c, group, topic)
        other = join(c, group, topic, protocol_type="connect")
        assert other["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_invalid_session_timeouts(gbroker: Any, topic: str) -> None:
    group = f"bad-session-{time.time_ns()}"
    with coordinator(gbroker, group) as c:
        for session in (499, 1_800_001):  # group.min.session.timeout.ms=500, max 1800000
            assert join(c, group, topic, session=session)["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT


def test_stale_generation_and_unknown_member_commits(gbroker: Any, topic: str) -> None:
    group = f"bad-commit-{time.time_ns()}"
    with coordinator(gbroker, group) as c:
        member, generation = stable_member(c, group, topic)
        assert commit(c, group, topic, generation - 1, member) == ErrorCode.ILLEGAL_GENERATION
        assert commit(c, group, topic, generation, "no-such-member") == ErrorCode.UNKNOWN_MEMBER_ID
        assert commit(c, group, topic, generation, member) == ErrorCode.NONE
        hb = c.call(ApiKey.HEARTBEAT, 3, {"group_id": group, "generation_id": generation + 5, "member_id": member,
                                          "group_instance_id": None})
        assert hb["error_code"] == ErrorCode.ILLEGAL_GENERATION


def test_requests_to_a_node_that_is_not_the_coordinator(gbroker: Any, topic: str) -> None:
    group = f"elsewhere-{time.time_ns()}"
    with Client(gbroker.bootstrap) as c:
        md = c.call(ApiKey.METADATA, 9, {"topics": [], "allow_auto_topic_creation": False})
        found = c.call(ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": 0})
    others = [b for b in md["brokers"] if b["node_id"] != found["node_id"]]
    if not others:
        pytest.skip("a single node coordinates every group")
    with Client(f"{others[0]['host']}:{others[0]['port']}") as c:
        assert join(c, group, topic)["error_code"] == ErrorCode.NOT_COORDINATOR
        assert commit(c, group, topic, -1, "") == ErrorCode.NOT_COORDINATOR


def test_find_coordinator_batched_and_bad_key_type(gbroker: Any) -> None:
    with Client(gbroker.bootstrap) as c:
        r = c.call(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["a", "b", "c"]})
        assert [x["key"] for x in r["coordinators"]] == ["a", "b", "c"]
        assert all(x["error_code"] == ErrorCode.NONE and x["port"] > 0 for x in r["coordinators"])
        r = c.call(ApiKey.FIND_COORDINATOR, 3, {"key": "a", "key_type": 9})
        assert r["error_code"] == ErrorCode.INVALID_REQUEST


def _version_body(api: ApiKey, version: int, group: str, topic: str, member: str, generation: int) -> dict[str, Any]:
    tp = [{"name": topic, "partitions": [{"partition_index": 0}]}]
    if api == ApiKey.JOIN_GROUP:
        return {"group_id": group, "session_timeout_ms": SESSION, "rebalance_timeout_ms": 3000, "member_id": member,
                "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": subscription([topic])}]}
    if api == ApiKey.SYNC_GROUP:
        return {"group_id": group, "generation_id": generation, "member_id": member, "assignments": []}
    if api == ApiKey.HEARTBEAT:
        return {"group_id": group, "generation_id": generation, "member_id": member}
    if api == ApiKey.OFFSET_COMMIT:
        return {"group_id": group, "generation_id_or_member_epoch": generation, "member_id": member,
                "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": version,
                                                           "committed_metadata": f"v{version}"}]}]}
    if api == ApiKey.OFFSET_FETCH:
        if version >= 8:
            return {"groups": [{"group_id": group, "topics": None}]}
        return {"group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}]}
    if api == ApiKey.LIST_GROUPS:
        return {"states_filter": []}
    if api == ApiKey.DESCRIBE_GROUPS:
        return {"groups": [group]}
    if api == ApiKey.OFFSET_DELETE:
        return {"group_id": group, "topics": tp}
    if api == ApiKey.DELETE_GROUPS:
        return {"groups_names": [group]}
    raise AssertionError(api)


def leave_body(version: int, group: str, *member_ids: str) -> dict[str, Any]:
    if version < 3:
        return {"group_id": group, "member_id": member_ids[0]}
    return {"group_id": group, "members": [{"member_id": m, "group_instance_id": None} for m in member_ids]}


@pytest.mark.parametrize("api", [ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, ApiKey.OFFSET_COMMIT,
                                 ApiKey.OFFSET_FETCH, ApiKey.LIST_GROUPS, ApiKey.DESCRIBE_GROUPS,
                                 ApiKey.OFFSET_DELETE, ApiKey.DELETE_GROUPS], ids=lambda api: api.name)
def test_every_version_is_answered(gbroker: Any, topic: str, api: ApiKey) -> None:
    lo, hi = SUPPORTED[api]
    for version in range(lo, hi + 1):
        group = f"v-{api.name.lower()}-{version}-{time.time_ns()}"
        with coordinator(gbroker, group) as c:
            member, generation = stable_member(c, group, topic)
            if api == ApiKey.DELETE_GROUPS:  # only an empty group can be deleted
                assert c.call(ApiKey.LEAVE_GROUP, 0, leave_body(0, group, member))["error_code"] == ErrorCode.NONE
            if api == ApiKey.OFFSET_COMMIT and version == 0:
                # v0 carries no member id or generation: only allowed while the group has no members
                assert c.call(ApiKey.LEAVE_GROUP, 0, leave_body(0, group, member))["error_code"] == ErrorCode.NONE
            r = c.call(api, version, _version_body(api, version, group, topic, member, generation))
            if api == ApiKey.JOIN_GROUP:  # the leader rejoining a stable group: a new generation
                assert r["error_code"] == ErrorCode.NONE and r["generation_id"] == generation + 1, (version, r)
                assert r["protocol_name"] == "range"
            elif api in (ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT):
                assert r["error_code"] == ErrorCode.NONE, (version, r)
            elif api == ApiKey.OFFSET_COMMIT:
                assert r["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE, (version, r)
                f = c.call(ApiKey.OFFSET_FETCH, 1, {"group_id": group, "topics": [
                    {"name": topic, "partition_indexes": [0]}]})
                got = f["topics"][0]["partitions"][0]
                assert (got["committed_offset"], got["metadata"]) == (version, f"v{version}")
            elif api == ApiKey.OFFSET_FETCH:
                assert r.get("error_code", 0) == ErrorCode.NONE, (version, r)
            elif api == ApiKey.LIST_GROUPS:
                assert group in {g["group_id"] for g in r["groups"]}, (version, r)
            elif api == ApiKey.DESCRIBE_GROUPS:
                d = r["groups"][0]
                assert (d["group_state"], d["protocol_data"], d["members"][0]["member_id"]) == ("Stable", "range",
                                                                                               member), (version, r)
            elif api == ApiKey.OFFSET_DELETE:
                assert r["error_code"] == ErrorCode.NONE
                assert r["topics"][0]["partitions"][0]["error_code"] == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            elif api == ApiKey.DELETE_GROUPS:
                assert r["results"][0]["error_code"] == ErrorCode.NONE, (version, r)
                d = c.call(ApiKey.DESCRIBE_GROUPS, 0, {"groups": [group]})
                assert d["groups"][0]["group_state"] == "Dead"
                continue
            leave = c.call(ApiKey.LEAVE_GROUP, 3, leave_body(3, group, member))
            assert leave["error_code"] == ErrorCode.NONE, leave


def test_leave_group_versions(gbroker: Any, topic: str) -> None:
    for version in range(0, 6):
        group = f"leave-{version}-{time.time_ns()}"
        with coordinator(gbroker, group) as c:
            member, _ = stable_member(c, group, topic)
            r = c.call(ApiKey.LEAVE_GROUP, version, leave_body(version, group, member, "x"))
            assert r["error_code"] == ErrorCode.NONE
            if version >= 3:
                assert [m["error_code"] for m in r["members"]] == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]
            d = c.call(ApiKey.DESCRIBE_GROUPS, 0, {"groups": [group]})
            assert d["groups"][0]["group_state"] == "Empty"
