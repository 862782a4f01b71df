"""Classic consumer groups, pyk against Apache Kafka: the JoinGroup / SyncGroup / Heartbeat /
LeaveGroup state machine, DescribeGroups states, offsets, and the error codes of each wrong step.

Member ids are the brokers' own: they are replaced by placeholders in order of appearance, so
"the leader is the member that joined first" is still compared.
"""

from __future__ import annotations

import time
from typing import Any

from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import TIMEOUT_S, Conn, Peer
from tests.helpers import wait_for

METADATA = b"\x00\x01\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x00"  # ConsumerProtocolSubscription v1: ["t"]
SESSION_MS = 30000


def join_body(group: str, member_id: str = "", protocol_type: str = "consumer", session_ms: int = SESSION_MS,
              instance: str | None = None) -> dict[str, Any]:
    return {"group_id": group, "session_timeout_ms": session_ms, "rebalance_timeout_ms": 10000,
            "member_id": member_id, "group_instance_id": instance, "protocol_type": protocol_type,
            "protocols": [{"name": "range", "metadata": METADATA}], "reason": None}  # fmt: skip


def join(p: Peer, group: str, member_id: str = "", **kw: Any) -> dict[str, Any]:
    return p.call(ApiKey.JOIN_GROUP, 9, join_body(group, member_id, **kw), p.coordinator(group))


def join_member(p: Peer, group: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new member's two JoinGroup rounds (MEMBER_ID_REQUIRED, then the join itself)."""
    first = join(p, group)
    return first, join(p, group, first["member_id"])


def sync(p: Peer, group: str, generation: int, member_id: str, assignments: dict[str, bytes] | None = None,
         ) -> dict[str, Any]:  # fmt: skip
    body = {"group_id": group, "generation_id": generation, "member_id": member_id, "group_instance_id": None,
            "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()]}  # fmt: skip
    return p.call(ApiKey.SYNC_GROUP, 5, body, p.coordinator(group))


def heartbeat(p: Peer, group: str, generation: int, member_id: str) -> dict[str, Any]:
    body = {"group_id": group, "generation_id": generation, "member_id": member_id, "group_instance_id": None}
    return p.call(ApiKey.HEARTBEAT, 4, body, p.coordinator(group))


def leave(p: Peer, group: str, *member_ids: str) -> dict[str, Any]:
    body = {"group_id": group, "members": [{"member_id": m, "group_instance_id": None, "reason": None}
                                           for m in member_ids]}  # fmt: skip
    return p.call(ApiKey.LEAVE_GROUP, 5, body, p.coordinator(group))


def describe(p: Peer, *groups: str) -> dict[str, Any]:
    return p.call(ApiKey.DESCRIBE_GROUPS, 5, {"groups": list(groups), "include_authorized_operations": False},
                  p.coordinator(groups[0]))


def commit(p: Peer, group: str, topic: str, offset: int, generation: int = -1, member_id: str = "",
           ) -> dict[str, Any]:  # fmt: skip
    body = {"group_id": group, "generation_id_or_member_epoch": generation, "member_id": member_id,
            "group_instance_id": None, "topics": [{"name": topic, "partitions": [
                {"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1,
                 "committed_metadata": "m"}]}]}  # fmt: skip
    return p.call(ApiKey.OFFSET_COMMIT, 9, body, p.coordinator(group))


def fetch_offsets(p: Peer, group: str, topic: str | None) -> dict[str, Any]:
    topics = None if topic is None else [{"name": topic, "partition_indexes": [0, 1]}]
    body = {"groups": [{"group_id": group, "member_id": None, "member_epoch": -1, "topics": topics}],
            "require_stable": True}  # fmt: skip
    return p.call(ApiKey.OFFSET_FETCH, 9, body, p.coordinator(group))


def test_join_sync_heartbeat_leave_states(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        out: dict[str, Any] = {}
        out["required"], out["joined"] = join_member(p, group)
        member, gen = out["joined"]["member_id"], out["joined"]["generation_id"]
        out["heartbeat_before_sync"] = heartbeat(p, group, gen, member)
        out["sync"] = sync(p, group, gen, member, {member: b"assignment"})
        out["stable"] = describe(p, group)
        out["heartbeat"] = heartbeat(p, group, gen, member)
        out["rejoin_same"] = join(p, group, member)
        out["leave"] = leave(p, group, member)
        out["empty"] = describe(p, group)
        out["heartbeat_after_leave"] = heartbeat(p, group, gen, member)
        return out

    pair.same(scenario)


def test_wrong_member_and_generation(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        _, joined = join_member(p, group)
        member, gen = joined["member_id"], joined["generation_id"]
        out: dict[str, Any] = {"sync_wrong_generation": sync(p, group, gen + 1, member, {member: b"a"}),
                               "sync_unknown_member": sync(p, group, gen, "nobody", {member: b"a"})}
        out["sync"] = sync(p, group, gen, member, {member: b"a"})
        out["heartbeat_illegal_generation"] = heartbeat(p, group, gen + 5, member)
        out["heartbeat_unknown_member"] = heartbeat(p, group, gen, "nobody")
        out["join_unknown_member"] = join(p, group, "nobody")
        out["leave_unknown_member"] = leave(p, group, "nobody", member)
        return out

    pair.same(scenario)


def test_requests_for_unknown_groups(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        return {"heartbeat": heartbeat(p, group, 1, "nobody"), "sync": sync(p, group, 1, "nobody"),
                "leave": leave(p, group, "nobody"), "describe": describe(p, group),
                "offsets": fetch_offsets(p, group, None), "offsets_of_topic": fetch_offsets(p, group, "t"),
                "delete": p.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]}, p.coordinator(group))}

    pair.same(scenario)


def test_join_bad_arguments(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        out = {"short_session": join(p, group, session_ms=1), "long_session": join(p, group, session_ms=10**8),
               "empty_protocol_type": join(p, group, protocol_type="")}  # fmt: skip
        out["empty_group"] = p.call(ApiKey.JOIN_GROUP, 9, join_body(""), p.coordinator(""))
        _, joined = join_member(p, group)
        out["inconsistent_protocol_type"] = join(p, group, protocol_type="connect")
        out["leave"] = leave(p, group, joined["member_id"])
        return out

    pair.same(scenario)


def test_rebalance_of_two_members(pair: Pair, topic: str) -> None:
    """A second member joins a stable group: the first learns it from its heartbeat, rejoins, and
    both get the new generation; then the group is described and the second leaves."""
    group = topic

    def scenario(p: Peer) -> Any:
        out: dict[str, Any] = {}
        _, a = join_member(p, group)
        out["a"] = a
        out["a_sync"] = sync(p, group, a["generation_id"], a["member_id"], {a["member_id"]: b"all"})
        node = p.coordinator(group)
        second: Conn = p.fresh(node)
        try:
            b_first = second.recv(ApiKey.JOIN_GROUP, 9, second.send(ApiKey.JOIN_GROUP, 9, join_body(group)))
            out["b_required"] = b_first
            b_cid = second.send(ApiKey.JOIN_GROUP, 9, join_body(group, b_first["member_id"]))
            # b's join and a's heartbeat go on two connections: a's is sent once b's join began
            # the rebalance, so that both brokers see them in that order.
            wait_for(lambda: describe(p, group)["groups"][0]["group_state"] == "PreparingRebalance",
                     timeout=TIMEOUT_S, interval=0.02, what=f"{p.name}: b's join to begin a rebalance")
            out["a_heartbeat"] = heartbeat(p, group, a["generation_id"], a["member_id"])
            out["preparing"] = describe(p, group)["groups"][0]["group_state"]
            out["a_rejoin"] = join(p, group, a["member_id"])
            out["b_join"] = b = second.recv(ApiKey.JOIN_GROUP, 9, b_cid)
        finally:
            second.close()
        out["a_rejoin"]["members"].sort(key=lambda m: m["member_id"] != a["member_id"])
        gen = out["a_rejoin"]["generation_id"]
        out["a_sync2"] = sync(p, group, gen, a["member_id"], {a["member_id"]: b"p0", b["member_id"]: b"p1"})
        out["b_sync"] = sync(p, group, gen, b["member_id"])
        described = describe(p, group)
        described["groups"][0]["members"].sort(key=lambda m: m["member_id"] != a["member_id"])
        out["stable"] = described
        out["b_leave"] = leave(p, group, b["member_id"])
        out["a_heartbeat_after"] = heartbeat(p, group, gen, a["member_id"])
        out["after_leave"] = describe(p, group)["groups"][0]["group_state"]
        return out

    pair.same(scenario)


def test_offsets_commit_fetch_and_generation_checks(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        p.create_topic(topic, partitions=2)
        out: dict[str, Any] = {"simple": commit(p, group, topic, 5)}
        out["fetched"] = fetch_offsets(p, group, topic)
        out["all"] = fetch_offsets(p, group, None)
        _, joined = join_member(p, group)
        member, gen = joined["member_id"], joined["generation_id"]
        out["before_sync"] = commit(p, group, topic, 6, gen, member)
        sync(p, group, gen, member, {member: b"a"})
        out["member"] = commit(p, group, topic, 7, gen, member)
        out["wrong_generation"] = commit(p, group, topic, 8, gen + 1, member)
        out["unknown_member"] = commit(p, group, topic, 9, gen, "nobody")
        out["no_generation_while_members"] = commit(p, group, topic, 10)
        out["unknown_topic"] = commit(p, group, f"{topic}-none", 1, gen, member)
        out["final"] = fetch_offsets(p, group, topic)
        out["delete_non_empty"] = p.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]}, p.coordinator(group))
        leave(p, group, member)
        out["delete_empty"] = p.call(ApiKey.DELETE_GROUPS, 2, {"groups_names": [group]}, p.coordinator(group))
        out["after_delete"] = describe(p, group)
        return out

    pair.same(scenario)


def test_list_groups_states_filter(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        _, joined = join_member(p, f"{topic}-a")
        sync(p, f"{topic}-a", joined["generation_id"], joined["member_id"], {joined["member_id"]: b"x"})
        commit(p, f"{topic}-b", "t", 1)  # an Empty group: offsets only

        def listed(states: list[str]) -> list[Any]:
            """Asked of every node, as Kafka's Admin.listGroups does (each pyk shard is a node)."""
            answers = [p.call(ApiKey.LIST_GROUPS, 4, {"states_filter": states}, node) for node in p.nodes()]
            return sorted({(a["error_code"], g["group_id"], g["protocol_type"], g["group_state"])
                           for a in answers for g in a["groups"] if g["group_id"].startswith(topic)})

        return {"all": listed([]), "stable": listed(["Stable"]), "empty": listed(["Empty"]),
                "bogus": listed(["NoSuchState"])}

    pair.same(scenario)


def test_find_coordinator_errors(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        def find(version: int, body: dict[str, Any]) -> Any:
            resp = p.call(ApiKey.FIND_COORDINATOR, version, body)
            return {k: v for k, v in resp.items() if k not in ("node_id", "host", "port", "coordinators")} | {
                "coordinators": [c["error_code"] for c in resp.get("coordinators", [])]}

        return {"bad_key_type": find(4, {"key_type": 7, "coordinator_keys": [topic]}),
                "empty_group": find(4, {"key_type": 0, "coordinator_keys": [""]}),
                "empty_txn": find(4, {"key_type": 1, "coordinator_keys": [""]}),
                "v3_bad_key_type": find(3, {"key": topic, "key_type": 7})}

    pair.same(scenario)


def test_static_membership_fencing(pair: Pair, topic: str) -> None:
    """A static member (group.instance.id) rejoining under a new member id fences its old id."""
    group = topic

    def scenario(p: Peer) -> Any:
        out: dict[str, Any] = {"first": join(p, group, instance="i-1")}
        old, gen = out["first"]["member_id"], out["first"]["generation_id"]
        out["sync"] = sync(p, group, gen, old, {old: b"a"})
        out["rejoin_unknown_id"] = join(p, group, "not-a-member", instance="i-1")
        out["rejoin_new"] = join(p, group, instance="i-1")
        new = out["rejoin_new"]["member_id"]
        out["old_heartbeat"] = p.call(ApiKey.HEARTBEAT, 4, {"group_id": group, "generation_id": gen,
                                                            "member_id": old, "group_instance_id": "i-1"},
                                      p.coordinator(group))
        out["new_heartbeat"] = p.call(ApiKey.HEARTBEAT, 4, {"group_id": group, "generation_id": gen,
                                                            "member_id": new, "group_instance_id": "i-1"},
                                      p.coordinator(group))
        out["described"] = describe(p, group)
        out["leave_by_instance"] = p.call(ApiKey.LEAVE_GROUP, 5, {"group_id": group, "members": [
            {"member_id": "", "group_instance_id": "i-1", "reason": None}]}, p.coordinator(group))
        out["after"] = describe(p, group)["groups"][0]["group_state"]
        return out

    pair.same(scenario)


def test_offset_delete(pair: Pair, topic: str) -> None:
    group = topic

    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        commit(p, group, topic, 3)

        def delete(name: str, gid: str = group) -> Any:
            body = {"group_id": gid, "topics": [{"name": name, "partitions": [{"partition_index": 0}]}]}
            return p.call(ApiKey.OFFSET_DELETE, 0, body, p.coordinator(gid))

        out = {"unknown_group": delete(topic, f"{group}-none"), "deleted": delete(topic),
               "unknown_topic": delete(f"{topic}-none")}
        out["fetched"] = fetch_offsets(p, group, topic)
        return out

    pair.same(scenario)


def test_consumer_group_heartbeat(pair: Pair, topic: str) -> None:
    """The KIP-848 protocol: a member joins with epoch 0, gets the group's partitions, is
    described, and leaves with epoch -1."""
    group = topic
    member = "differential-member-0000"  # v1: the client chooses its member id

    def scenario(p: Peer) -> Any:
        p.create_topic(topic, partitions=2)
        node = p.coordinator(group)

        def beat(epoch: int, topics: list[str] | None = None, member_id: str = member) -> Any:
            body = {"group_id": group, "member_id": member_id, "member_epoch": epoch, "instance_id": None,
                    "rack_id": None, "rebalance_timeout_ms": 10000 if epoch == 0 else -1,
                    "subscribed_topic_names": topics, "subscribed_topic_regex": None, "server_assignor": None,
                    "topic_partitions": [] if epoch == 0 else None}  # fmt: skip
            resp = p.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, body, node)
            if resp["assignment"] is not None:
                for tp in resp["assignment"]["topic_partitions"]:
                    tp["partitions"].sort()
            return resp

        # Kafka's group coordinator learns of a new topic from its metadata image a moment after
        # CreateTopics: a join before that gets epoch 1 with nothing and epoch 2 with the
        # partitions.  A probe group (compared nowhere) waits for it, so both brokers assign at once.
        probe = group + "-probe"
        wait_for(lambda: (p.call(ApiKey.CONSUMER_GROUP_HEARTBEAT, 1, {
            "group_id": probe, "member_id": member, "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 10000, "subscribed_topic_names": [topic], "subscribed_topic_regex": None,
            "server_assignor": None, "topic_partitions": []}, p.coordinator(probe))["assignment"] or {}).get(
            "topic_partitions"), timeout=TIMEOUT_S, interval=0.05, what=f"{p.name}: the coordinator to assign {topic}")
        deadline = time.monotonic() + TIMEOUT_S
        out = {"join": beat(0, [topic])}
        while not (out["join"]["assignment"] or {}).get("topic_partitions"):  # the assignment may come later
            assert time.monotonic() < deadline, out
            out["join"] = beat(out["join"]["member_epoch"])
        out["unknown_member"] = beat(1, member_id="nobody-0000000000000000")
        out["fenced_epoch"] = beat(out["join"]["member_epoch"] + 5)
        described = p.call(ApiKey.CONSUMER_GROUP_DESCRIBE, 1, {"group_ids": [group],
                                                               "include_authorized_operations": False}, node)
        for g in described["groups"]:
            for m in g["members"]:
                for key in ("assignment", "target_assignment"):
                    for tp in m[key]["topic_partitions"]:
                        tp["partitions"].sort()
        out["described"] = described
        out["leave"] = beat(-1)
        return out

    pair.same(scenario)
