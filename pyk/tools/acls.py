"""`pyk acls add | remove | list`: ACLs over the Kafka protocol (CreateAcls / DeleteAcls /
DescribeAcls), with the options of Kafka's kafka-acls.sh where they fit:

    pyk acls add --allow-principal User:alice --operation Read --operation Describe --topic orders
    pyk acls add --deny-principal User:bob --operation Write --topic logs- --resource-pattern-type prefixed
    pyk acls remove --allow-principal User:alice --operation Read --topic orders
    pyk acls list [--topic orders] [--principal User:alice] [--resource-pattern-type match]

Resources: --topic, --group, --transactional-id (each repeatable) and --cluster; with none,
`list` shows every ACL.  --operation defaults to All (add, remove: every operation).  The output
of `list` is kafka-acls.sh's.  The client is librdkafka (confluent-kafka's AdminClient), so `-X`
passes client properties (security.protocol, sasl.*, ssl.*) as kcat's -X does.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

_TIMEOUT_S = 30.0
_CLUSTER = "kafka-cluster"
_PATTERN_TYPES = ("literal", "prefixed", "any", "match")
_ANY: Any = None  # a filter's name, principal or host matching any (librdkafka's stubs say str)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("acls", help="add, remove and list ACLs (kafka-acls.sh)")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port of any broker node")
    p.add_argument("-X", dest="client_config", action="append", default=[], metavar="KEY=VALUE",
                   help="a librdkafka client property (security.protocol, sasl.*, ssl.*); repeatable")
    actions = p.add_subparsers(dest="action", required=True)
    for name, text in (("add", "create ACLs"), ("remove", "delete the matching ACLs"), ("list", "show ACLs")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--topic", action="append", default=[])
        a.add_argument("--group", action="append", default=[])
        a.add_argument("--transactional-id", action="append", default=[])
        a.add_argument("--cluster", action="store_true", help="the cluster resource")
        a.add_argument("--resource-pattern-type", choices=_PATTERN_TYPES, default="literal",
                       help="literal (default) or prefixed; list and remove also take any and match")
        if name == "list":
            a.add_argument("--principal", action="append", default=[], help="only this principal's ACLs")
            continue
        a.add_argument("--allow-principal", action="append", default=[], metavar="PRINCIPAL")
        a.add_argument("--deny-principal", action="append", default=[], metavar="PRINCIPAL")
        a.add_argument("--allow-host", default="*", help="host of the --allow-principal ACLs (default *)")
        a.add_argument("--deny-host", default="*", help="host of the --deny-principal ACLs (default *)")
        a.add_argument("--operation", action="append", default=[],
                       help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, AlterConfigs, "
                            "DescribeConfigs, IdempotentWrite, All (default All); repeatable")


def _resources(args: argparse.Namespace) -> list[tuple[str, str]]:
    found = ([("TOPIC", t) for t in args.topic] + [("GROUP", g) for g in args.group]
             + [("TRANSACTIONAL_ID", t) for t in args.transactional_id])
    return found + [("CLUSTER", _CLUSTER)] if args.cluster else found


def _operation(text: str) -> str:
    """Kafka's CamelCase names (ClusterAction) to the enum's (CLUSTER_ACTION)."""
    return "".join("_" + c if c.isupper() and i else c for i, c in enumerate(text)).upper()


def _entries(args: argparse.Namespace) -> list[tuple[str, str, str, str | None]]:
    """(principal, host, permission, operation; None: any) of an add or remove."""
    operations: list[str | None] = [_operation(o) for o in args.operation] or (
        ["ALL"] if args.action == "add" else [None])
    return [(p, host, permission, op)
            for principals, host, permission in ((args.allow_principal, args.allow_host, "ALLOW"),
                                                 (args.deny_principal, args.deny_host, "DENY"))
            for p in principals for op in operations]


def _print(bindings: list[Any]) -> None:
    def pattern(b: Any) -> tuple[str, str, str]:
        return b.restype.name, b.name, b.resource_pattern_type.name

    for (rtype, name, ptype), acls in itertools.groupby(sorted(bindings, key=pattern), key=pattern):
        print(f"Current ACLs for resource `ResourcePattern(resourceType={rtype}, name={name}, "
              f"patternType={ptype})`: ")
        for b in acls:
            print(f" \t(principal={b.principal}, host={b.host}, operation={b.operation.name}, "
                  f"permissionType={b.permission_type.name})")
        print()


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    conf = dict(item.partition("=")[::2] for item in args.client_config)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **conf})
    resources = _resources(args)
    pattern = ResourcePatternType[args.resource_pattern_type.upper()]
    try:
        if args.action == "list":
            filters = [AclBindingFilter(ResourceType[r], n, pattern, p, _ANY, AclOperation.ANY, AclPermissionType.ANY)
                       for r, n in resources or [("ANY", _ANY)] for p in args.principal or [_ANY]]
            found = {b for f in filters for b in admin.describe_acls(f, request_timeout=_TIMEOUT_S).result(_TIMEOUT_S)}
            _print(list(found))
            return 0
        if not resources:
            print("error: name at least one resource: --topic, --group, --transactional-id or --cluster")
            return 2
        entries = _entries(args)
        if args.action == "add":
            if not entries or pattern not in (ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED):
                print("error: add needs --allow-principal or --deny-principal, and a literal or prefixed pattern")
                return 2
            bindings = [AclBinding(ResourceType[r], n, pattern, p, host, AclOperation[op or "ALL"],
                                   AclPermissionType[perm])
                        for r, n in resources for p, host, perm, op in entries]
            for future in admin.create_acls(bindings, request_timeout=_TIMEOUT_S).values():
                future.result(_TIMEOUT_S)
            print(f"added {len(bindings)} ACL(s)")
            _print(bindings)
            return 0
        removals = [AclBindingFilter(ResourceType[r], n, pattern, p, host, AclOperation[op or "ANY"],
                                     AclPermissionType[perm])
                    for r, n in resources for p, host, perm, op in entries] or [
            AclBindingFilter(ResourceType[r], n, pattern, _ANY, _ANY, AclOperation.ANY, AclPermissionType.ANY)
            for r, n in resources]
        removed = [b for future in admin.delete_acls(removals, request_timeout=_TIMEOUT_S).values()
                   for b in future.result(_TIMEOUT_S)]
        print(f"removed {len(removed)} ACL(s)")
        _print(removed)
        return 0
    except KafkaException as exc:
        print(f"error: {exc.args[0].str() if exc.args else exc}")
        return 1
