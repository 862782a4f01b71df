"""Client quotas, pyk against Apache Kafka: AlterClientQuotas (valid entries, bad keys, values and
entities, validate_only) and DescribeClientQuotas (exact, default and "specified" filters, strict,
bad filters).

Every request goes byte for byte to both brokers (tests/differential/peer.py); the answers must
match field by field.  Entity names are unique to the test (Kafka is shared by the session);
Kafka applies a change through its metadata log, so a describe is repeated until it shows it.
"""

from __future__ import annotations

import time
from typing import Any

from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import TIMEOUT_S, Peer

EXACT, DEFAULT, SPECIFIED = 0, 1, 2


def entity(**names: str | None) -> list[dict[str, Any]]:
    return [{"entity_type": kind.replace("_", "-"), "entity_name": name} for kind, name in names.items()]


def op(key: str, value: float = 0.0, remove: bool = False) -> dict[str, Any]:
    return {"key": key, "value": value, "remove": remove}


def alter(p: Peer, entries: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
          validate_only: bool = False) -> dict[str, Any]:
    """The answer with its results sorted: Kafka's come in the order of a hash map of entities."""
    resp = p.call(ApiKey.ALTER_CLIENT_QUOTAS, 1, {"entries": [{"entity": e, "ops": o} for e, o in entries],
                                                  "validate_only": validate_only})
    for e in resp["entries"]:
        e["entity"].sort(key=lambda x: x["entity_type"])
    resp["entries"].sort(key=lambda e: repr(e["entity"]))
    return resp


def describe(p: Peer, components: list[tuple[str, int, str | None]], strict: bool = False,
             expect: int | None = None) -> dict[str, Any]:
    """The answer with its entries sorted; repeated until it has `expect` entries."""
    body = {"components": [{"entity_type": t, "match_type": m, "match": n} for t, m, n in components],
            "strict": strict}
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        resp = p.call(ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, body)
        if resp["entries"] is not None:
            for e in resp["entries"]:
                e["entity"].sort(key=lambda x: x["entity_type"])
                e["values"].sort(key=lambda v: v["key"])
            resp["entries"].sort(key=lambda e: repr(e["entity"]))
        if expect is None or len(resp["entries"] or []) == expect or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def test_alter_and_describe(pair: Pair, topic: str) -> None:
    user, client = f"u-{topic}", f"c-{topic}"

    def scenario(p: Peer) -> Any:
        altered = alter(p, [
            (entity(user=user), [op("producer_byte_rate", 1024), op("request_percentage", 12.5)]),
            (entity(user=user, client_id=client), [op("consumer_byte_rate", 2048)]),
            (entity(user=user, client_id=None), [op("consumer_byte_rate", 4096)]),
            (entity(client_id=client), [op("producer_byte_rate", 100)]),
        ])
        exact = describe(p, [("user", EXACT, user)], expect=3)
        strict = describe(p, [("user", EXACT, user)], strict=True, expect=1)
        both = describe(p, [("user", EXACT, user), ("client-id", EXACT, client)], expect=1)
        default_client = describe(p, [("user", EXACT, user), ("client-id", DEFAULT, None)], expect=1)
        specified = describe(p, [("user", EXACT, user), ("client-id", SPECIFIED, None)], expect=2)
        client_only = describe(p, [("client-id", EXACT, client)], strict=True, expect=1)
        removed = alter(p, [(entity(user=user), [op("request_percentage", remove=True), op("nothing_set", 1,
                                                                                           remove=True)])])
        after = describe(p, [("user", EXACT, user)], strict=True)
        deadline = time.monotonic() + TIMEOUT_S
        while len(after["entries"][0]["values"]) != 1 and time.monotonic() < deadline:
            after = describe(p, [("user", EXACT, user)], strict=True)
        return {"altered": altered, "exact": exact, "strict": strict, "both": both, "default_client": default_client,
                "specified": specified, "client_only": client_only, "removed": removed, "after": after}

    pair.same(scenario)


def test_alter_errors_and_validate_only(pair: Pair, topic: str) -> None:
    user = f"v-{topic}"

    def scenario(p: Peer) -> Any:
        altered = alter(p, [
            (entity(user=user), [op("no_such_key", 1)]),
            (entity(user=user), [op("producer_byte_rate", -1)]),
            (entity(user=user), [op("producer_byte_rate", 0)]),
            (entity(user=user), [op("producer_byte_rate", 1.5)]),
            (entity(user=user), [op("producer_byte_rate", 10), op("producer_byte_rate", 20)]),
            (entity(user=""), [op("producer_byte_rate", 10)]),
            (entity(ip="127.0.0.1"), [op("producer_byte_rate", 10)]),
            (entity(ip="127.0.0.1", user=user), [op("connection_creation_rate", 10)]),
            (entity(user=user), [op("connection_creation_rate", 10)]),
            ([{"entity_type": "group", "entity_name": "g"}], [op("producer_byte_rate", 10)]),
            ([], [op("producer_byte_rate", 10)]),
        ])
        checked = alter(p, [(entity(user=user, client_id="c"), [op("producer_byte_rate", 10)])], validate_only=True)
        time.sleep(0.5)  # Kafka would have applied a change by now (nothing should show)
        nothing = describe(p, [("user", EXACT, user)])
        return {"altered": altered, "checked": checked, "nothing": nothing}

    pair.same(scenario)


def test_describe_bad_filters(pair: Pair) -> None:
    def scenario(p: Peer) -> Any:
        return [describe(p, components) for components in (
            [("user", EXACT, None)],
            [("user", DEFAULT, "x")],
            [("user", SPECIFIED, "x")],
            [("user", EXACT, "a"), ("user", DEFAULT, None)],
            [("group", EXACT, "g")],
            [("", EXACT, "g")],
            [("user", 7, None)],
            [("ip", SPECIFIED, None), ("client-id", EXACT, "c")],
        )]

    pair.same(scenario)
