"""`pyk topics list | describe TOPIC | create TOPIC | delete TOPIC` over the Kafka protocol.

Works against any Kafka-protocol broker.  Against pyk, `describe` shows the placement: each
partition's leader is the shard (worker process) that owns it, node id = node.id + shard index.
Tables are rich tables on a terminal and tab-separated lines in a pipe (pyk/tools/output.py).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pyk.client import BrokerError, Cluster
from pyk.errors import ErrorCode
from pyk.protocol import ApiKey
from pyk.tools.output import table

TOPIC_RESOURCE = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("topics", help="list, describe, create and delete topics")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port of any broker node")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="topic names with their partition counts")
    d = actions.add_parser("describe", help="partitions: leader node, shard, offsets; config overrides")
    d.add_argument("topic")
    c = actions.add_parser("create", help="create a topic")
    c.add_argument("topic")
    c.add_argument("--partitions", type=int, default=-1, help="default: the broker's num.partitions")
    c.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="topic config (repeatable)")
    r = actions.add_parser("delete", help="delete a topic")
    r.add_argument("topic")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (BrokerError, ConnectionError) as exc:
        print(f"error: {exc}")
        return 1


async def _metadata(cluster: Cluster, topics: list[str] | None) -> dict[str, Any]:
    version = cluster.version(ApiKey.METADATA)
    body: dict[str, Any] = {"topics": None if topics is None else [{"name": t} for t in topics]}
    if version >= 4:
        body["allow_auto_topic_creation"] = False
    return await cluster.conn.request(ApiKey.METADATA, version, body)


async def _run(args: argparse.Namespace) -> int:
    cluster = await Cluster.connect(args.bootstrap)
    try:
        if args.action == "list":
            md = await _metadata(cluster, None)
            table("topics", ("topic", "partitions"), [(t["name"], f"{len(t['partitions'])} partitions")
                                                      for t in sorted(md["topics"], key=lambda t: t["name"])],
                  header=False)
            return 0
        if args.action == "describe":
            return await _describe(cluster, args.topic)
        if args.action == "create":
            configs = dict(item.partition("=")[::2] for item in args.config)
            await cluster.create_topic(args.topic, args.partitions, 1, configs)
            print(f"created {args.topic}")
            return 0
        version = cluster.version(ApiKey.DELETE_TOPICS)
        body: dict[str, Any] = {"timeout_ms": 30000}
        if version >= 6:
            body["topics"] = [{"name": args.topic}]
        else:
            body["topic_names"] = [args.topic]
        resp = await cluster.conn.request(ApiKey.DELETE_TOPICS, version, body)
        code = resp["responses"][0]["error_code"]
        if code != ErrorCode.NONE:
            print(f"error: deleting {args.topic}: {ErrorCode(code).name}")
            return 1
        print(f"deleted {args.topic}")
        return 0
    finally:
        cluster.close()


async def _describe(cluster: Cluster, topic: str) -> int:
    md = await _metadata(cluster, [topic])
    entry = md["topics"][0]
    if entry["error_code"] != ErrorCode.NONE:
        print(f"error: {topic}: {ErrorCode(entry['error_code']).name}")
        return 1
    first_node = min(b["node_id"] for b in md["brokers"])
    parts = await cluster.metadata(topic)
    start = await cluster.list_offsets(topic, parts, -2)
    end = await cluster.list_offsets(topic, parts, -1)
    print(f"topic {topic}  id {entry.get('topic_id')}  partitions {len(parts)}")
    table("partitions", ("partition", "leader", "shard", "log-start", "log-end"),
          [(p.partition, p.leader, p.leader - first_node, start[p.partition], end[p.partition]) for p in parts])
    version = cluster.version(ApiKey.DESCRIBE_CONFIGS)
    resp = await cluster.conn.request(ApiKey.DESCRIBE_CONFIGS, version, {"resources": [
        {"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configuration_keys": None}]})
    overrides = [c for c in resp["results"][0]["configs"] if c.get("config_source") == 1 or
                 (version == 0 and not c.get("is_default"))]
    if overrides:
        print("configs: " + ", ".join(f"{c['name']}={c['value']}" for c in overrides))
    return 0
