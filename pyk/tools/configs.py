"""`pyk configs describe | alter` for a topic or the brokers, as Kafka's kafka-configs.sh.

On confluent-kafka's AdminClient (DescribeConfigs, IncrementalAlterConfigs), so it works
against any Kafka-protocol broker.  `--broker ID` names one node (on pyk, one shard); `--broker`
without an id is the cluster-wide default that every node takes, which librdkafka cannot name
(it refuses an empty resource name), so that one goes through pyk's own client, as Kafka's
kafka-configs.sh --entity-default does.  `describe` lists the overrides (what is not a
default), `--all` every key with its source, in a rich table.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)
from rich.console import Console
from rich.table import Table

from pyk.client import BrokerError, Cluster
from pyk.errors import ErrorCode
from pyk.protocol import ApiKey

_CLUSTER_DEFAULT = ""  # the broker resource name of the cluster-wide default


def add_parser(sub: Any) -> None:
    p = sub.add_parser("configs", help="describe and alter topic and broker configs")
    p.add_argument("--bootstrap", "-b", default="127.0.0.1:9092", help="host:port of any broker node")
    actions = p.add_subparsers(dest="action", required=True)
    for name, doc in (("describe", "a topic's or broker's configs"), ("alter", "set or delete config overrides")):
        a = actions.add_parser(name, help=doc)
        which = a.add_mutually_exclusive_group(required=True)
        which.add_argument("--topic", help="a topic")
        which.add_argument("--broker", nargs="?", const=_CLUSTER_DEFAULT, metavar="ID",
                           help="a broker node; without ID, the cluster-wide default")
        if name == "describe":
            a.add_argument("--all", action="store_true", help="every key, defaults included")
        else:
            a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="repeatable")
            a.add_argument("--delete", action="append", default=[], metavar="KEY", help="repeatable")


def run(args: argparse.Namespace) -> int:
    if args.broker == _CLUSTER_DEFAULT:
        try:
            return asyncio.run(_cluster_default(args))
        except (BrokerError, ConnectionError) as exc:
            Console(stderr=True).print(f"[red]error:[/] {exc}", soft_wrap=True)
            return 1
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    if args.topic is not None:
        resource = ConfigResource(ResourceType.TOPIC, args.topic)
    else:
        resource = ConfigResource(ResourceType.BROKER, args.broker)
    try:
        if args.action == "describe":
            return _describe(admin, resource, args.all)
        return _alter(admin, resource, args.set, args.delete)
    except KafkaException as exc:
        error = exc.args[0]
        Console(stderr=True).print(f"[red]error:[/] {error.name()}: {error.str()}", soft_wrap=True)
        return 1


def _describe(admin: AdminClient, resource: ConfigResource, everything: bool) -> int:
    entries: dict[str, ConfigEntry] = admin.describe_configs([resource])[resource].result(timeout=30)
    title = f"configs of topic {resource.name}" if resource.restype == ResourceType.TOPIC else f"configs of broker {resource.name}"
    _show(title, [(name, None if e.is_sensitive else e.value, ConfigSource(e.source).value, e.is_read_only)
                  for name, e in entries.items()], everything)
    return 0


def _show(title: str, entries: list[tuple[str, str | None, int, bool]], everything: bool) -> None:
    """(key, value or None if sensitive, ConfigSource value, read-only) as a table; without
    `everything`, the overrides only."""
    table = Table(title=title)
    for column in ("key", "value", "source", "read-only"):
        table.add_column(column)
    for name, value, source, read_only in sorted(entries):
        if not everything and source == ConfigSource.DEFAULT_CONFIG.value:
            continue
        table.add_row(name, "(sensitive)" if value is None else value, ConfigSource(source).name,
                      "yes" if read_only else "")
    Console().print(table)


def _changes(sets: list[str], deletes: list[str]) -> list[tuple[str, AlterConfigOpType, str | None]]:
    """--set KEY=VALUE and --delete KEY as (key, operation, value)."""
    changes: list[tuple[str, AlterConfigOpType, str | None]] = []
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        changes.append((key, AlterConfigOpType.SET, value))
    return changes + [(key, AlterConfigOpType.DELETE, None) for key in deletes]


def _alter(admin: AdminClient, resource: ConfigResource, sets: list[str], deletes: list[str]) -> int:
    for key, op, value in _changes(sets, deletes):
        resource.add_incremental_config(ConfigEntry(key, value, incremental_operation=op))
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    Console().print(f"altered {len(sets)} set, {len(deletes)} deleted")
    return 0


async def _cluster_default(args: argparse.Namespace) -> int:
    """describe / alter of the cluster-wide default BROKER resource (name "") on the wire."""
    cluster = await Cluster.connect(args.bootstrap)
    resource = {"resource_type": ResourceType.BROKER.value, "resource_name": _CLUSTER_DEFAULT}
    try:
        if args.action == "describe":
            version = cluster.version(ApiKey.DESCRIBE_CONFIGS)
            if version < 1:
                raise BrokerError("the broker cannot say where a config comes from (DescribeConfigs v1)")
            resp = await cluster.conn.request(ApiKey.DESCRIBE_CONFIGS, version, {
                "resources": [{**resource, "configuration_keys": None}], "include_synonyms": False,
                "include_documentation": False})
            result = resp["results"][0]
            _raise(result["error_code"], result["error_message"])
            _show("cluster-wide broker defaults", [
                (c["name"], None if c["is_sensitive"] else c["value"], c["config_source"], c["read_only"])
                for c in result["configs"]], args.all)
            return 0
        configs = [{"name": key, "config_operation": op.value, "value": value}
                   for key, op, value in _changes(args.set, args.delete)]
        resp = await cluster.conn.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, cluster.version(ApiKey.INCREMENTAL_ALTER_CONFIGS),
                                          {"resources": [{**resource, "configs": configs}], "validate_only": False})
        result = resp["responses"][0]
        _raise(result["error_code"], result["error_message"])
        Console().print(f"altered {len(args.set)} set, {len(args.delete)} deleted")
        return 0
    finally:
        cluster.close()


def _raise(code: int, message: str | None) -> None:
    if code != ErrorCode.NONE:
        raise BrokerError(f"{ErrorCode(code).name}: {message or ''}")
