"""`pyk configs describe | alter` for a topic or the brokers, as Kafka's kafka-configs.sh.

On confluent-kafka's AdminClient (DescribeConfigs, IncrementalAlterConfigs), so it works
against any Kafka-protocol broker.  `--broker ID` names one node (on pyk, one shard); `--broker`
without an id is the cluster-wide default that every node takes.  `describe` lists the
overrides (what is not a default), `--all` every key with its source, in a rich table.
"""

from __future__ import annotations

import argparse
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from rich.console import Console
from rich.table import Table

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
    title = f"configs of topic {resource.name}" if resource.restype == ResourceType.TOPIC else (
        f"configs of broker {resource.name}" if resource.name else "cluster-wide broker defaults")
    table = Table(title=title)
    for column in ("key", "value", "source", "read-only"):
        table.add_column(column)
    for name, entry in sorted(entries.items()):
        if not everything and entry.is_default:
            continue
        value = "(sensitive)" if entry.is_sensitive else ("" if entry.value is None else entry.value)
        table.add_row(name, value, str(entry.source).rpartition(".")[2], "yes" if entry.is_read_only else "")
    Console().print(table)
    return 0


def _alter(admin: AdminClient, resource: ConfigResource, sets: list[str], deletes: list[str]) -> int:
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        resource.add_incremental_config(ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET))
    for key in deletes:
        resource.add_incremental_config(ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE))
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    Console().print(f"altered {len(sets)} set, {len(deletes)} deleted")
    return 0
