"""`pyk users list | describe USER... | add USER --password P | delete USER` : SCRAM users over the
Kafka protocol (DescribeUserScramCredentials / AlterUserScramCredentials, KIP-554), as Kafka's
`kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-256=[password=...]'` does.

The client is librdkafka (confluent-kafka's AdminClient), so the tool reaches a broker on any
listener: `-X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=admin
...` passes client properties through, as kcat's -X does.  The password is salted on this side;
the broker stores only the salted keys (pyk.server.security.scram).
"""

from __future__ import annotations

import argparse
from typing import Any

_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_TIMEOUT_S = 30.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("users", help="list, add and delete SCRAM users (SASL/SCRAM-SHA-256/512 credentials)")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port of any broker node")
    p.add_argument("-X", dest="client_config", action="append", default=[], metavar="KEY=VALUE",
                   help="a librdkafka client property (security.protocol, sasl.*, ssl.*); repeatable")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every user with SCRAM credentials, and their mechanisms")
    d = actions.add_parser("describe", help="the mechanisms and iteration counts of some users")
    d.add_argument("user", nargs="+")
    a = actions.add_parser("add", help="create or replace a user's credentials")
    a.add_argument("user")
    a.add_argument("--password", required=True)
    a.add_argument("--mechanism", action="append", choices=_MECHANISMS, help="default: both")
    a.add_argument("--iterations", type=int, default=4096, help="PBKDF2 iterations (Kafka: 4096..16384)")
    rm = actions.add_parser("delete", help="delete a user's credentials")
    rm.add_argument("user")
    rm.add_argument("--mechanism", action="append", choices=_MECHANISMS, help="default: both")


def run(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    conf = dict(item.partition("=")[::2] for item in args.client_config)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **conf})
    mechanisms = [ScramMechanism[m.replace("-", "_")] for m in (getattr(args, "mechanism", None) or _MECHANISMS)]
    try:
        if args.action in ("list", "describe"):
            users = None if args.action == "list" else args.user
            result = admin.describe_user_scram_credentials(users)  # one future for all, or one per user
            described = ({u: f.result(_TIMEOUT_S) for u, f in result.items()} if isinstance(result, dict)
                         else result.result(_TIMEOUT_S))
            for user, description in sorted(described.items()):
                infos = ", ".join(f"{i.mechanism.name.replace('_', '-')} (iterations {i.iterations})"
                                  for i in description.scram_credential_infos)
                print(f"{user}\t{infos}")
            return 0
        if args.action == "add":
            changes: list[Any] = [UserScramCredentialUpsertion(args.user, ScramCredentialInfo(m, args.iterations),
                                                               args.password.encode()) for m in mechanisms]
        else:
            changes = [UserScramCredentialDeletion(args.user, m) for m in mechanisms]
        for future in admin.alter_user_scram_credentials(changes).values():
            future.result(_TIMEOUT_S)
        print(f"{'updated' if args.action == 'add' else 'deleted'} {args.user} "
              f"({', '.join(m.name.replace('_', '-') for m in mechanisms)})")
        return 0
    except KafkaException as exc:
        print(f"error: {exc.args[0].str() if exc.args else exc}")
        return 1
