"""GroupCoordinator in-process, on real logs in a temporary directory, driven call by call.

Each scenario runs inside its own event loop, whose clock the test moves forward: the
coordinator's timers (session, pending member, join and sync) run on the loop it is started
with, and its timestamps (offset retention) come from the `clock_ms` it is given, so one
`Clock.advance` moves both, and a scenario never sleeps to let a timeout pass.  The node is a
CoordinatorHost over real logs and a real ReplicaManager (topics created in line); the
real-broker suites cover the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from pyk.config import ServerConfig
from pyk.coordinator import OFFSETS_TOPIC, GroupCoordinator
from pyk.coordinator.api import (
    DeletableGroupResult,
    JoinGroupResult,
    MemberIdentity,
    OffsetCommitPartition,
    SyncGroupResult,
)
from pyk.coordinator.group import GroupState
from pyk.errors import ErrorCode
from pyk.log import LogManager, PartitionLog
from pyk.log.config import LogConfig
from pyk.server.metadata_store import TopicInfo
from pyk.server.replica_manager import ReplicaManager
from tests.groups.wire import assignment, subscription

TOPIC = "events"
pytestmark = pytest.mark.timeout(60)


class StubMetadata:
    def __init__(self) -> None:
        self.topics: dict[str, TopicInfo] = {}

    def get(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)


class LocalHost:
    """A CoordinatorHost (pyk.coordinator.host) of one node over a real LogManager and
    ReplicaManager; topics are created in line instead of through the control plane."""

    def __init__(self, directory: Path, **overrides: str) -> None:
        raw = {"log.dirs": str(directory), "group.initial.rebalance.delay.ms": "0",
               "group.min.session.timeout.ms": "10", "offsets.topic.num.partitions": "3", **overrides}
        self.config = ServerConfig(raw)
        self.defaults = LogConfig.from_server(self.config)
        self.logs = LogManager([str(directory)], self.defaults)
        self.logs.load()
        self.metadata = StubMetadata()
        self.node_id = 1
        self.replicas = ReplicaManager(self.logs, self.metadata, 1, 1)  # type: ignore[arg-type]
        for name in {tp[0] for tp in self.logs.logs}:
            count = 1 + max(p for t, p in self.logs.logs if t == name)
            self.metadata.topics[name] = TopicInfo(name, uuid.uuid4(), count)
        if TOPIC not in self.metadata.topics:
            self._create(TOPIC, 4, {})

    def _create(self, name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        info = self.metadata.topics[name] = TopicInfo(name, uuid.uuid4(), partitions, dict(configs))
        for p in range(partitions):
            self.logs.create(name, p, self.defaults.with_overrides(configs))
        return info

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        return self._create(name, partitions, configs)

    async def next_producer_id(self) -> int:
        raise AssertionError("the group coordinator allocates no producer ids")

    def topic(self, name: str) -> TopicInfo | None:
        return self.metadata.get(name)

    def user_topics(self) -> list[TopicInfo]:
        return [info for info in self.metadata.topics.values() if not info.internal]

    def local_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get(topic, partition)

    def leader(self, info: TopicInfo, partition: int) -> int:
        return self.node_id

    def node(self, node_id: int) -> dict[str, Any] | None:
        return NODE if node_id == NODE["node_id"] else None


NODE = {"node_id": 1, "host": "127.0.0.1", "port": 9092, "rack": None}


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs `skipped` seconds ahead of the monotonic clock."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def time(self) -> float:
        return super().time() + self.skipped


class Clock:
    """The coordinator's wall clock (ms) and its loop's clock, moved forward together."""

    def __init__(self, loop: SteppedLoop) -> None:
        self.now = 1_700_000_000_000
        self.loop = loop

    def __call__(self) -> int:
        return self.now

    async def advance(self, ms: int) -> None:
        """Moves time on by `ms` and lets the loop run the timers that came due."""
        self.now += ms
        self.loop.skipped += ms / 1000
        await asyncio.sleep(0)


async def until(predicate: Callable[[], object], what: str) -> None:
    """Yields to the loop until predicate() holds: the other tasks' steps run meanwhile."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"not reached after 1000 loop iterations: {what}")


def run(directory: Path, scenario: Callable[[GroupCoordinator, LocalHost, Clock], Coroutine[Any, Any, None]],
        **overrides: str) -> None:
    async def main() -> None:
        broker = LocalHost(directory, **overrides)
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SteppedLoop)
        clock = Clock(loop)
        coordinator = GroupCoordinator(broker, clock)
        coordinator.start(loop)
        await coordinator.ensure_offsets_topic()
        try:
            await scenario(coordinator, broker, clock)
        finally:
            coordinator.stop()
            broker.logs.close()

    # No asyncio.wait_for around it: a scenario moves the loop's clock by minutes (the
    # module's pytest timeout bounds a hang instead).
    with asyncio.Runner(loop_factory=SteppedLoop) as runner:
        runner.run(main())


def join_request(group: str, member_id: str = "", session: int = 200, instance: str | None = None,
                 protocol_type: str = "consumer", protocols: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    """ClassicGroupManager.join_group's request arguments."""
    protos = protocols if protocols is not None else [("range", subscription([TOPIC]))]
    return {"group_id": group, "session_timeout_ms": session, "rebalance_timeout_ms": 1000, "member_id": member_id,
            "group_instance_id": instance, "protocol_type": protocol_type, "protocols": protos}


def join_group(c: GroupCoordinator, request: dict[str, Any], client_id: str, client_host: str,
               version: int) -> JoinGroupResult | Awaitable[JoinGroupResult]:
    return c.classic.join_group(**request, client_id=client_id, client_host=client_host, version=version)


def sync_group(c: GroupCoordinator, request: dict[str, Any]) -> SyncGroupResult | Awaitable[SyncGroupResult]:
    return c.classic.sync_group(**request)


async def resolve(result: Any) -> dict[str, Any]:
    """A JoinGroup/SyncGroup result, waited for when parked, as a dict (Kafka's field names)."""
    if isinstance(result, JoinGroupResult | SyncGroupResult):
        return dataclasses.asdict(result)
    return dataclasses.asdict(await asyncio.wait_for(result, 5))


async def join(c: GroupCoordinator, group: str, version: int = 5, **kw: Any) -> dict[str, Any]:
    """JoinGroup including the KIP-394 second round trip for dynamic members."""
    body = await resolve(join_group(c, join_request(group, **kw), "client", "/127.0.0.1", version))
    if body["error_code"] == ErrorCode.MEMBER_ID_REQUIRED:
        kw["member_id"] = body["member_id"]
        body = await resolve(join_group(c, join_request(group, **kw), "client", "/127.0.0.1", version))
    return body


def sync_request(group: str, generation: int, member_id: str, assignments: dict[str, bytes] | None = None,
                 instance: str | None = None) -> dict[str, Any]:
    """ClassicGroupManager.sync_group's arguments."""
    return {"group_id": group, "generation_id": generation, "member_id": member_id, "group_instance_id": instance,
            "protocol_type": "consumer", "protocol_name": "range", "assignments": dict(assignments or {})}


def heartbeat(c: GroupCoordinator, group: str, generation: int, member_id: str, instance: str | None = None) -> ErrorCode:
    return c.classic.heartbeat(group, member_id, generation, instance)


def commit(c: GroupCoordinator, group: str, offset: int, generation: int = -1, member_id: str = "",
           partition: int = 0, version: int = 8, instance: str | None = None) -> ErrorCode:
    (result,) = c.offsets.commit_offsets(group, member_id, generation, instance,
                                         [OffsetCommitPartition(TOPIC, partition, offset, committed_metadata="m")],
                                         version)
    return result.error_code


def committed(c: GroupCoordinator, group: str, partition: int = 0) -> int:
    result = c.offsets.fetch_offsets(group, [(TOPIC, partition)])
    assert result.error_code == ErrorCode.NONE
    return result.partitions[0].committed_offset


async def stable_single(c: GroupCoordinator, group: str, **kw: Any) -> tuple[str, int]:
    j = await join(c, group, **kw)
    assert j["error_code"] == ErrorCode.NONE, j
    s = await resolve(sync_group(c, sync_request(group, j["generation_id"], j["member_id"],
                                                {j["member_id"]: assignment({TOPIC: [0, 1, 2, 3]})},
                                                kw.get("instance"))))
    assert s["error_code"] == ErrorCode.NONE
    return j["member_id"], j["generation_id"]


def test_single_member_join_sync_heartbeat_commit(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        first = await resolve(join_group(c, join_request("g"), "client", "/h", 5))
        assert first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED and first["member_id"].startswith("client-")
        j = await resolve(join_group(c, join_request("g", member_id=first["member_id"]), "client", "/h", 5))
        assert (j["error_code"], j["generation_id"], j["leader"], j["protocol_name"]) == (
            ErrorCode.NONE, 1, first["member_id"], "range")
        assert [m["member_id"] for m in j["members"]] == [first["member_id"]]
        member = j["member_id"]
        s = await resolve(sync_group(c, sync_request("g", 1, member, {member: b"assigned"})))
        assert (s["error_code"], s["assignment"]) == (ErrorCode.NONE, b"assigned")
        assert c.groups["g"].state is GroupState.STABLE
        assert heartbeat(c, "g", 1, member) == ErrorCode.NONE
        assert commit(c, "g", 42, 1, member) == ErrorCode.NONE
        assert committed(c, "g") == 42
        assert committed(c, "g", 3) == -1

    run(tmp_path, scenario)


def test_two_members_share_a_generation(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        a, gen = await stable_single(c, "g")
        # A second member joins: the first learns of the rebalance through its heartbeat.
        b_join = asyncio.ensure_future(join(c, "g"))
        await until(lambda: len(c.groups["g"].members) == 2, "the second member's join")
        assert heartbeat(c, "g", gen, a) == ErrorCode.REBALANCE_IN_PROGRESS
        a_join = await resolve(join_group(c, join_request("g", member_id=a), "client", "/h", 5))
        b = await b_join
        assert a_join["generation_id"] == b["generation_id"] == gen + 1
        assert a_join["leader"] == b["leader"] == a
        assert len(a_join["members"]) == 2 and b["members"] == []
        # The follower waits in SyncGroup until the leader brings the assignment.
        b_sync = sync_group(c, sync_request("g", gen + 1, b["member_id"]))
        assert not isinstance(b_sync, dict)
        a_sync = await resolve(sync_group(c, sync_request("g", gen + 1, a, {a: b"A", b["member_id"]: b"B"})))
        assert a_sync["assignment"] == b"A"
        assert (await resolve(b_sync))["assignment"] == b"B"

    run(tmp_path, scenario)


def test_silent_member_expires_and_the_group_rebalances(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        a, gen = await stable_single(c, "g", session=10_000)
        await clock.advance(9_000)
        assert c.groups["g"].state is GroupState.STABLE  # within its session
        await clock.advance(1_001)  # no heartbeat for the whole session
        await until(lambda: not c.groups["g"].members, "the silent member's expiry")
        assert "g" in c.groups
        assert c.groups["g"].state is GroupState.EMPTY
        assert heartbeat(c, "g", gen, a) == ErrorCode.UNKNOWN_MEMBER_ID
        # its committed offsets survive the member
        assert committed(c, "g") == -1

    run(tmp_path, scenario)


def test_heartbeats_keep_a_member_alive(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        a, gen = await stable_single(c, "g", session=10_000)
        for _ in range(10):  # 80 s in all, 8 s between heartbeats
            await clock.advance(8_000)
            assert heartbeat(c, "g", gen, a) == ErrorCode.NONE
        assert c.groups["g"].state is GroupState.STABLE and a in c.groups["g"].members

    run(tmp_path, scenario)


def test_commit_fencing(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        # Without members anyone may commit without a generation (offset storage only).
        assert commit(c, "g", 5) == ErrorCode.NONE
        a, gen = await stable_single(c, "g")
        assert commit(c, "g", 6, gen - 1, a) == ErrorCode.ILLEGAL_GENERATION
        assert commit(c, "g", 6, gen, "nobody") == ErrorCode.UNKNOWN_MEMBER_ID
        assert commit(c, "g", 6) == ErrorCode.UNKNOWN_MEMBER_ID  # the group has members now
        assert commit(c, "g", 6, gen, a, partition=99) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert commit(c, "unknown-group", 1, 3, "m") == ErrorCode.ILLEGAL_GENERATION
        assert committed(c, "g") == 5
        assert commit(c, "g", 7, gen, a) == ErrorCode.NONE
        assert committed(c, "g") == 7

    run(tmp_path, scenario)


def test_join_validation(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        assert (await join(c, "g", session=5))["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT
        assert (await join(c, "g", session=1_800_001))["error_code"] == ErrorCode.INVALID_SESSION_TIMEOUT
        assert (await join(c, "g", protocol_type=""))["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(c, "", ))["error_code"] == ErrorCode.INVALID_GROUP_ID
        assert "g" not in c.groups  # failed joins leave nothing behind
        await stable_single(c, "g")
        assert (await join(c, "g", protocol_type="connect"))["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        other = [("roundrobin", subscription([TOPIC]))]
        assert (await join(c, "g", protocols=other))["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(c, "g", member_id="ghost"))["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID

    run(tmp_path, scenario)


def test_protocol_selection_prefers_what_most_members_prefer(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        sub = subscription([TOPIC])
        a = await join(c, "g", protocols=[("range", sub), ("roundrobin", sub)])
        assert a["protocol_name"] == "range"
        b_join = asyncio.ensure_future(join(c, "g", protocols=[("roundrobin", sub), ("range", sub)]))
        c_join = asyncio.ensure_future(join(c, "g", protocols=[("roundrobin", sub), ("sticky", sub)]))
        await until(lambda: len(c.groups["g"].members) == 3, "both new members' joins")
        a2 = await resolve(join_group(c, join_request("g", member_id=a["member_id"],
                                                     protocols=[("range", sub), ("roundrobin", sub)]), "c", "/h", 5))
        assert a2["protocol_name"] == (await b_join)["protocol_name"] == (await c_join)["protocol_name"] == "roundrobin"

    run(tmp_path, scenario)


def test_static_member_rejoins_without_rebalance_and_fences_the_old_id(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        old, gen = await stable_single(c, "g", instance="pod-1")
        assignment_before = c.groups["g"].members[old].assignment
        j = await join(c, "g", instance="pod-1")  # the restarted client: unknown member id
        assert j["error_code"] == ErrorCode.NONE and j["generation_id"] == gen
        assert j["member_id"] != old and j["leader"] == old  # v<9: told the previous leader id
        s = await resolve(sync_group(c, sync_request("g", gen, j["member_id"], instance="pod-1")))
        assert s["assignment"] == assignment_before
        assert c.groups["g"].state is GroupState.STABLE
        assert heartbeat(c, "g", gen, old, "pod-1") == ErrorCode.FENCED_INSTANCE_ID
        assert heartbeat(c, "g", gen, j["member_id"], "pod-1") == ErrorCode.NONE
        assert commit(c, "g", 3, gen, old, instance="pod-1") == ErrorCode.FENCED_INSTANCE_ID
        # v9 (KIP-814): the static leader gets the members and skips the assignment
        j9 = await join(c, "g", instance="pod-1", version=9)
        assert j9["skip_assignment"] and j9["leader"] == j9["member_id"] and len(j9["members"]) == 1

    run(tmp_path, scenario)


def test_leave_by_instance_id(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        await stable_single(c, "g", instance="pod-1")
        left = c.classic.leave_group("g", [MemberIdentity("", "pod-1"), MemberIdentity("", "pod-2")])
        assert left.error_code == ErrorCode.NONE
        assert [r.error_code for r in left.members] == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]
        assert c.groups["g"].state is GroupState.EMPTY

    run(tmp_path, scenario)


def test_pending_member_expires(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        first = await resolve(join_group(c, join_request("g", session=10_000), "client", "/h", 5))
        assert first["error_code"] == ErrorCode.MEMBER_ID_REQUIRED
        assert first["member_id"] in c.groups["g"].pending_members
        await clock.advance(9_000)
        assert first["member_id"] in c.groups["g"].pending_members  # within its session
        await clock.advance(1_001)
        await until(lambda: "g" not in c.groups, "the pending member's expiry")

    run(tmp_path, scenario)


def test_groups_and_offsets_reload(tmp_path: Path) -> None:
    state: dict[str, Any] = {}

    async def write(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        member, gen = await stable_single(c, "live", session=30_000)
        assert commit(c, "live", 11, gen, member, partition=1) == ErrorCode.NONE
        assert commit(c, "standalone", 7) == ErrorCode.NONE
        assert commit(c, "standalone", 8) == ErrorCode.NONE
        await stable_single(c, "deleted")
        c.classic.leave_group("deleted", [MemberIdentity(m) for m in list(c.groups["deleted"].members)])
        assert commit(c, "deleted", 1) == ErrorCode.NONE
        assert c.delete_groups(["deleted"]) == [DeletableGroupResult("deleted", ErrorCode.NONE)]
        state.update(member=member, gen=gen, assignment=c.groups["live"].members[member].assignment)

    async def read(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        assert set(c.groups) == {"live", "standalone"}
        live = c.groups["live"]
        assert live.state is GroupState.STABLE and live.generation == state["gen"]
        assert list(live.members) == [state["member"]] and live.leader_id == state["member"]
        assert live.members[state["member"]].assignment == state["assignment"]
        assert live.subscribed_topics == {TOPIC}
        # the restored member carries on with its generation, without rejoining
        assert heartbeat(c, "live", state["gen"], state["member"]) == ErrorCode.NONE
        assert committed(c, "live", 1) == 11
        assert committed(c, "standalone") == 8
        assert c.groups["standalone"].protocol_type is None

    run(tmp_path, write)
    run(tmp_path, read)


def test_retention_expires_offsets_of_empty_groups(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        member, gen = await stable_single(c, "g")
        assert commit(c, "g", 5, gen, member) == ErrorCode.NONE
        assert commit(c, "simple", 9) == ErrorCode.NONE
        clock.now += 30_000
        assert c.offsets.expire_offsets(clock.now) == 0
        c.classic.leave_group("g", [MemberIdentity(member)])  # empty from now on
        clock.now += 30_000
        assert c.offsets.expire_offsets(clock.now) == 1  # "simple": a minute since its commit
        assert "simple" not in c.groups and "g" in c.groups
        clock.now += 29_999
        assert c.offsets.expire_offsets(clock.now) == 0
        clock.now += 1  # a minute since "g" became empty (its commit is older than that)
        assert c.offsets.expire_offsets(clock.now) == 1
        assert "g" not in c.groups

    run(tmp_path, scenario, **{"offsets.retention.minutes": "1"})

    async def reloaded(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        assert c.groups == {}

    run(tmp_path, reloaded)


def test_delete_groups_and_offsets(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        member, gen = await stable_single(c, "g")
        assert commit(c, "g", 5, gen, member, partition=0) == ErrorCode.NONE
        assert commit(c, "g", 6, gen, member, partition=1) == ErrorCode.NONE
        assert c.delete_groups(["g", "missing"]) == [
            DeletableGroupResult("g", ErrorCode.NON_EMPTY_GROUP),
            DeletableGroupResult("missing", ErrorCode.GROUP_ID_NOT_FOUND)]
        code, results = c.offsets.delete_offsets("g", [(TOPIC, 0)])
        assert code == ErrorCode.NONE
        assert results[0].error_code == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
        c.classic.leave_group("g", [MemberIdentity(member)])
        code, results = c.offsets.delete_offsets("g", [(TOPIC, 0)])
        assert results[0].error_code == ErrorCode.NONE
        assert committed(c, "g", 0) == -1 and committed(c, "g", 1) == 6
        assert c.delete_groups(["g"]) == [DeletableGroupResult("g", ErrorCode.NONE)]
        assert "g" not in c.groups
        assert c.describe_group("g").group_state == "Dead"

    run(tmp_path, scenario)


def test_list_and_describe(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        member, _ = await stable_single(c, "g")
        assert commit(c, "simple", 1) == ErrorCode.NONE
        listed = {g.group_id: g for g in c.list_groups([])}
        assert listed["g"].group_state == "Stable" and listed["g"].protocol_type == "consumer"
        assert listed["simple"].group_state == "Empty" and listed["simple"].protocol_type == ""
        assert [g.group_id for g in c.list_groups(["stable"])] == ["g"]
        d = c.describe_group("g")
        assert (d.group_state, d.protocol_data, d.members[0].member_id) == ("Stable", "range", member)
        assert d.members[0].member_assignment == assignment({TOPIC: [0, 1, 2, 3]})

    run(tmp_path, scenario)


def test_find_coordinator_and_placement(tmp_path: Path) -> None:
    async def scenario(c: GroupCoordinator, broker: LocalHost, clock: Clock) -> None:
        assert c.find_coordinator("any-group") == NODE
        info = broker.metadata.get(OFFSETS_TOPIC)
        assert info is not None and info.partitions == 3
        assert info.configs["cleanup.policy"] == "compact"

    run(tmp_path, scenario)
