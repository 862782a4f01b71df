"""`pyk groups list | describe GROUP | delete GROUP... | reset-offsets GROUP ...` over the Kafka protocol.

Works against any Kafka-protocol broker, like Kafka's kafka-consumer-groups.sh:
  * list: ListGroups asked of every node (each lists the groups it coordinates), merged;
  * describe: the group's state and members (DescribeGroups, assignments decoded with the
    consumer protocol), then per partition the committed offset (OffsetFetch), the log end
    offset (ListOffsets to the partition's leader) and the lag between them;
  * delete: DeleteGroups (only empty groups can be deleted);
  * reset-offsets: new committed offsets for an inactive group: --to-earliest, --to-latest,
    --to-datetime, --to-offset, --shift-by; --dry-run prints the plan without committing.
    Targets are clamped to each partition's [log start, log end], as Kafka's tool does.

Every group request goes to the group's coordinator (FindCoordinator), which on a sharded pyk is
the shard that owns the group's `__consumer_offsets` partition.  Tables are rich tables on a
terminal and tab-separated lines in a pipe (pyk/tools/output.py); reset-offsets shows its
progress over the partitions' offset lookups on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pyk.client import BrokerError, Cluster, Connection
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE, decode_assignment
from pyk.errors import ErrorCode, ProtocolViolation
from pyk.protocol import ApiKey
from pyk.tools.output import ProgressBar, table

_COORDINATOR_RETRIES = 50  # x 0.1 s: the first lookup may be creating __consumer_offsets
LATEST, EARLIEST = -1, -2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("groups", help="list, describe, delete consumer groups and reset their offsets")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port of any broker node")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="groups with their state and protocol type")
    ls.add_argument("--state", action="append", default=[], help="only groups in this state (repeatable)")
    d = actions.add_parser("describe", help="members, assignment, committed offset, log end and lag per partition")
    d.add_argument("group")
    rm = actions.add_parser("delete", help="delete empty groups and their committed offsets")
    rm.add_argument("group", nargs="+")
    r = actions.add_parser("reset-offsets", help="set an inactive group's committed offsets")
    r.add_argument("group")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", action="append", default=[], metavar="TOPIC[:P,P...]",
                       help="a topic, optionally some of its partitions (repeatable)")
    which.add_argument("--all-topics", action="store_true", help="every topic the group has offsets for")
    how = r.add_mutually_exclusive_group(required=True)
    how.add_argument("--to-earliest", action="store_true")
    how.add_argument("--to-latest", action="store_true")
    how.add_argument("--to-datetime", metavar="ISO-8601", help="first offset at or after this time, e.g. 2024-05-01T12:00:00Z")
    how.add_argument("--to-offset", type=int)
    how.add_argument("--shift-by", type=int, metavar="N", help="move the committed offsets by N (may be negative)")
    r.add_argument("--dry-run", action="store_true", help="print the new offsets without committing them")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (BrokerError, ConnectionError, ValueError) as exc:
        print(f"error: {exc}")
        return 1


async def _run(args: argparse.Namespace) -> int:
    cluster = await Cluster.connect(args.bootstrap)
    try:
        if args.action == "list":
            return await _list(cluster, args.state)
        if args.action == "describe":
            return await _describe(cluster, args.group)
        if args.action == "delete":
            return await _delete(cluster, args.group)
        return await _reset(cluster, args)
    finally:
        cluster.close()


def _check(code: int, what: str) -> None:
    if code != ErrorCode.NONE:
        raise BrokerError(f"{what}: {error_name(code)}")


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"


async def _nodes(cluster: Cluster) -> dict[int, tuple[str, int]]:
    version = cluster.version(ApiKey.METADATA)
    body: dict[str, Any] = {"topics": []}
    if version >= 4:
        body["allow_auto_topic_creation"] = False
    resp = await cluster.conn.request(ApiKey.METADATA, version, body)
    cluster.nodes = {b["node_id"]: (b["host"], b["port"]) for b in resp["brokers"]}
    return cluster.nodes


async def find_coordinator(cluster: Cluster, key: str, key_type: int = 0) -> Connection:
    """A connection to the coordinator of a group (key_type 0) or a transactional id (1)."""
    version = cluster.version(ApiKey.FIND_COORDINATOR)
    body: dict[str, Any] = {"key_type": key_type}
    if version >= 4:
        body["coordinator_keys"] = [key]
    else:
        body["key"] = key
    for _ in range(_COORDINATOR_RETRIES):
        resp = await cluster.conn.request(ApiKey.FIND_COORDINATOR, version, body)
        found = resp["coordinators"][0] if version >= 4 else resp
        if found["error_code"] == ErrorCode.NONE:
            cluster.nodes[found["node_id"]] = (found["host"], found["port"])
            return await cluster.connection(found["node_id"])
        if not ErrorCode(found["error_code"]).retriable:
            break
        await asyncio.sleep(0.1)
    raise BrokerError(f"no coordinator for {key!r}: {error_name(found['error_code'])}")


# list ---------------------------------------------------------------------------------------------
async def _list(cluster: Cluster, states: list[str]) -> int:
    version = cluster.version(ApiKey.LIST_GROUPS)
    if states and version < 4:
        raise BrokerError("the broker cannot filter groups by state (ListGroups v4)")
    groups: dict[str, dict[str, Any]] = {}
    for node in sorted(await _nodes(cluster)):
        conn = await cluster.connection(node)
        resp = await conn.request(ApiKey.LIST_GROUPS, version, {"states_filter": states})
        _check(resp["error_code"], f"ListGroups on node {node}")
        for g in resp["groups"]:
            groups[g["group_id"]] = g
    table("consumer groups", ("GROUP", "STATE", "PROTOCOL-TYPE"),
          [(name, groups[name].get("group_state") or "-", groups[name]["protocol_type"] or "-") for name in sorted(groups)])
    return 0


# describe ---------------------------------------------------------------------------------------
async def _describe_group(cluster: Cluster, conn: Connection, group: str) -> dict[str, Any]:
    resp = await conn.request(ApiKey.DESCRIBE_GROUPS, cluster.version(ApiKey.DESCRIBE_GROUPS), {"groups": [group]})
    described = resp["groups"][0]
    _check(described["error_code"], f"describing {group}")
    return dict(described)


async def _committed(cluster: Cluster, conn: Connection, group: str) -> dict[tuple[str, int], int]:
    """Every committed offset of the group (OffsetFetch with all topics, v2+)."""
    version = cluster.version(ApiKey.OFFSET_FETCH)
    if version < 2:
        raise BrokerError("the broker cannot list all of a group's offsets (OffsetFetch v2)")
    if version >= 8:
        resp = await conn.request(ApiKey.OFFSET_FETCH, version, {"groups": [{"group_id": group, "topics": None}]})
        entry = resp["groups"][0]
    else:
        entry = await conn.request(ApiKey.OFFSET_FETCH, version, {"group_id": group, "topics": None})
    _check(entry.get("error_code", 0), f"fetching the offsets of {group}")
    out = {}
    for t in entry["topics"]:
        for p in t["partitions"]:
            _check(p["error_code"], f"offset of {t['name']}-{p['partition_index']}")
            if p["committed_offset"] >= 0:
                out[(t["name"], p["partition_index"])] = p["committed_offset"]
    return out


async def _offsets(cluster: Cluster, topics: set[str], timestamp: int,
                   advance: Callable[[int], None] = lambda n: None) -> dict[tuple[str, int], int]:
    """The offset of every partition of `topics` at `timestamp` (ListOffsets), one topic at a
    time; `advance` is told how many partitions each one had."""
    out = {}
    for topic in sorted(topics):
        parts = await cluster.metadata(topic)
        for partition, offset in (await cluster.list_offsets(topic, parts, timestamp)).items():
            out[(topic, partition)] = offset
        advance(len(parts))
    return out


async def _describe(cluster: Cluster, group: str) -> int:
    conn = await find_coordinator(cluster, group)
    described = await _describe_group(cluster, conn, group)
    committed = await _committed(cluster, conn, group)
    if described["group_state"] == "Dead" and not committed:
        print(f"error: group {group} does not exist")
        return 1
    owner: dict[tuple[str, int], dict[str, Any]] = {}
    print(f"group {group}  state {described['group_state']}  protocol {described['protocol_type'] or '-'}"
          f"/{described['protocol_data'] or '-'}  members {len(described['members'])}")
    members = []
    for m in described["members"]:
        assigned: dict[str, list[int]] = {}
        if described["protocol_type"] == PROTOCOL_TYPE:
            try:
                assigned = decode_assignment(m["member_assignment"])
            except ProtocolViolation:
                assigned = {}
        for topic, parts in assigned.items():
            for p in parts:
                owner[(topic, p)] = m
        shown = " ".join(f"{t}:{','.join(map(str, sorted(ps)))}" for t, ps in sorted(assigned.items())) or "-"
        members.append((m["member_id"], m.get("group_instance_id") or "-", m["client_id"], m["client_host"] or "-", shown))
    if members:
        table("members", ("MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"), members)
    topics = {t for t, _ in committed} | {t for t, _ in owner}
    ends = await _offsets(cluster, topics, LATEST)
    rows = []
    total = 0
    for topic, partition in sorted(set(committed) | set(owner)):
        current = committed.get((topic, partition))
        end = ends.get((topic, partition))
        lag = end - current if current is not None and end is not None else None
        total += lag or 0
        member = owner.get((topic, partition))
        rows.append((topic, partition, _show(current), _show(end), _show(lag), member["member_id"] if member else "-"))
    table("offsets", ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"), rows)
    print(f"total lag {total}")
    return 0


def _show(value: int | None) -> str:
    return "-" if value is None else str(value)


# delete -----------------------------------------------------------------------------------------
async def _delete(cluster: Cluster, groups: list[str]) -> int:
    failed = 0
    for group in groups:
        conn = await find_coordinator(cluster, group)
        resp = await conn.request(ApiKey.DELETE_GROUPS, cluster.version(ApiKey.DELETE_GROUPS), {"groups_names": [group]})
        code = resp["results"][0]["error_code"]
        if code == ErrorCode.NONE:
            print(f"deleted {group}")
        else:
            failed += 1
            print(f"error: deleting {group}: {error_name(code)}")
    return 1 if failed else 0


# reset-offsets ----------------------------------------------------------------------------------
def _parse_topics(specs: list[str]) -> dict[str, list[int] | None]:
    out: dict[str, list[int] | None] = {}
    for spec in specs:
        topic, _, parts = spec.partition(":")
        out[topic] = [int(p) for p in parts.split(",")] if parts else None
    return out


def _timestamp_ms(text: str) -> int:
    """ISO-8601; a time without a zone is local time, as in Kafka's tool."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


async def _reset(cluster: Cluster, args: argparse.Namespace) -> int:
    group = args.group
    conn = await find_coordinator(cluster, group)
    described = await _describe_group(cluster, conn, group)
    if described["members"]:
        print(f"error: group {group} has {len(described['members'])} active members ({described['group_state']}); "
              "offsets can only be reset while its consumers are stopped")
        return 1
    committed = await _committed(cluster, conn, group)
    wanted: dict[str, list[int] | None]
    if args.all_topics:
        wanted = {t: None for t, _ in committed}
    else:
        wanted = _parse_topics(args.topic)
    targets: list[tuple[str, int]] = []
    partition_counts = {}
    for topic, parts in wanted.items():
        known = [p.partition for p in await cluster.metadata(topic)]
        partition_counts[topic] = len(known)
        for p in parts if parts is not None else known:
            if p not in known:
                raise BrokerError(f"{topic} has no partition {p}")
            targets.append((topic, p))
    if not targets:
        print(f"group {group} has no offsets to reset")
        return 0
    topics = {t for t, _ in targets}
    lookups = 3 if args.to_datetime is not None else 2  # earliest, latest, by time: each over every partition
    with ProgressBar("looking up offsets", lookups * sum(partition_counts[t] for t in topics)) as advance:
        earliest = await _offsets(cluster, topics, EARLIEST, advance)
        latest = await _offsets(cluster, topics, LATEST, advance)
        by_time = (await _offsets(cluster, topics, _timestamp_ms(args.to_datetime), advance)
                   if args.to_datetime is not None else {})
    new: dict[tuple[str, int], int] = {}
    for tp in sorted(targets):
        if args.to_earliest:
            offset = earliest[tp]
        elif args.to_latest:
            offset = latest[tp]
        elif args.to_datetime is not None:
            offset = by_time[tp] if by_time[tp] >= 0 else latest[tp]  # nothing that late: the end
        elif args.to_offset is not None:
            offset = args.to_offset
        else:
            if tp not in committed:
                raise BrokerError(f"{tp[0]}-{tp[1]} has no committed offset to shift")
            offset = committed[tp] + args.shift_by
        new[tp] = min(max(offset, earliest[tp]), latest[tp])
    table(f"new offsets of {group}", ("TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"),
          [(topic, partition, _show(committed.get((topic, partition))), offset) for (topic, partition), offset in new.items()])
    if args.dry_run:
        print("(dry run: nothing committed)")
        return 0
    await _commit(cluster, conn, group, new)
    print(f"committed new offsets for {len(new)} partitions of {group}")
    return 0


async def _commit(cluster: Cluster, conn: Connection, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """OffsetCommit without a generation or member id: allowed while the group has no members."""
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, []).append({"partition_index": partition, "committed_offset": offset,
                                               "committed_leader_epoch": -1, "committed_metadata": ""})
    body = {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "retention_time_ms": -1, "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]}
    resp = await conn.request(ApiKey.OFFSET_COMMIT, cluster.version(ApiKey.OFFSET_COMMIT), body)
    for t in resp["topics"]:
        for p in t["partitions"]:
            _check(p["error_code"], f"committing {t['name']}-{p['partition_index']}")
