"""`pyk quotas describe | alter`: client quotas (KIP-546), as Kafka's `kafka-configs.sh
--entity-type users/clients --describe | --alter --add-config producer_byte_rate=...`.

On pyk's own wire client (pyk.client: DescribeClientQuotas, AlterClientQuotas), because
librdkafka has no client-quota API; it reaches a PLAINTEXT listener of any Kafka-protocol
broker.  An entity is `--user NAME` or `--user-default`, `--client-id NAME` or
`--client-default` (either or both), or `--ip ADDRESS`; `describe` without one lists every quota.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from pyk.client import Cluster
from pyk.protocol.apis import ApiKey

_EXACT, _DEFAULT, _SPECIFIED = 0, 1, 2  # DescribeClientQuotas match types


def add_parser(sub: Any) -> None:
    p = sub.add_parser("quotas", help="describe and alter client quotas (users, client ids)")
    p.add_argument("--bootstrap", "-b", default="127.0.0.1:9092", help="host:port of any broker node")
    actions = p.add_subparsers(dest="action", required=True)
    for name, doc in (("describe", "quotas of matching entities (all without an entity)"),
                      ("alter", "set or delete quota keys of one entity")):
        a = actions.add_parser(name, help=doc)
        user = a.add_mutually_exclusive_group()
        user.add_argument("--user", help="a user (the principal's name)")
        user.add_argument("--user-default", action="store_true", help="the default user")
        client = a.add_mutually_exclusive_group()
        client.add_argument("--client-id", help="a client id")
        client.add_argument("--client-default", action="store_true", help="the default client id")
        a.add_argument("--ip", help="an IP address (connection_creation_rate)")
        if name == "alter":
            a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="producer_byte_rate, consumer_byte_rate, request_percentage, ...; repeatable")
            a.add_argument("--delete", action="append", default=[], metavar="KEY", help="repeatable")


def _entity(args: argparse.Namespace) -> dict[str, str | None]:
    """entity type -> name (None: the type's default entity)."""
    out: dict[str, str | None] = {}
    if args.user is not None or args.user_default:
        out["user"] = args.user
    if args.client_id is not None or args.client_default:
        out["client-id"] = args.client_id
    if args.ip is not None:
        out["ip"] = args.ip
    return out


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    cluster = await Cluster.connect(args.bootstrap)
    try:
        entity = _entity(args)
        if args.action == "describe":
            return await _describe(cluster, entity)
        if not entity:
            raise SystemExit("alter: name an entity (--user, --user-default, --client-id, --client-default, --ip)")
        return await _alter(cluster, entity, args.set, args.delete)
    finally:
        cluster.close()


async def _describe(cluster: Cluster, entity: dict[str, str | None]) -> int:
    components = [{"entity_type": kind, "match_type": _DEFAULT if name is None else _EXACT, "match": name}
                  for kind, name in entity.items()]
    if not components:  # everything: any user, any client id, any ip
        answers = [await _call(cluster, ApiKey.DESCRIBE_CLIENT_QUOTAS, {
            "components": [{"entity_type": kind, "match_type": _SPECIFIED, "match": None}], "strict": False})
            for kind in ("user", "client-id", "ip")]
    else:
        answers = [await _call(cluster, ApiKey.DESCRIBE_CLIENT_QUOTAS, {"components": components, "strict": True})]
    for answer in answers:
        if answer["error_code"]:
            Console(stderr=True).print(f"[red]error:[/] {answer['error_code']}: {answer['error_message']}")
            return 1
    rows = {tuple((e["entity_type"], e["entity_name"]) for e in entry["entity"]):
            {v["key"]: v["value"] for v in entry["values"]} for answer in answers for entry in answer["entries"]}
    table = Table(title="client quotas")
    for column in ("entity", "key", "value"):
        table.add_column(column)
    for path, values in sorted(rows.items(), key=lambda item: repr(item[0])):
        name = ", ".join(f"{kind} {'<default>' if n is None else n}" for kind, n in path)
        for key, value in sorted(values.items()):
            table.add_row(name, key, f"{value:.15g}")
    Console().print(table)
    return 0


async def _alter(cluster: Cluster, entity: dict[str, str | None], sets: list[str],
                 deletes: list[str]) -> int:
    ops = []
    for item in sets:
        key, sep, value = item.partition("=")
        try:
            number = float(value) if sep else None
        except ValueError:
            number = None
        if number is None:
            raise SystemExit(f"--set {item!r}: expected KEY=NUMBER")
        ops.append({"key": key, "value": number, "remove": False})
    ops += [{"key": key, "value": 0.0, "remove": True} for key in deletes]
    answer = await _call(cluster, ApiKey.ALTER_CLIENT_QUOTAS, {"entries": [{
        "entity": [{"entity_type": kind, "entity_name": name} for kind, name in entity.items()],
        "ops": ops}], "validate_only": False})
    result = answer["entries"][0]
    if result["error_code"]:
        Console(stderr=True).print(f"[red]error:[/] {result['error_code']}: {result['error_message']}",
                                   soft_wrap=True)
        return 1
    Console().print(f"altered {len(sets)} set, {len(deletes)} deleted")
    return 0


async def _call(cluster: Cluster, api: ApiKey, body: dict[str, Any]) -> dict[str, Any]:
    return await cluster.conn.request(api, cluster.version(api), body)
