"""Consumer groups with the Java consumer (kafka-clients 4.1) against `pyk serve`, alone and mixed
with librdkafka (confluent-kafka) members in one group, as Kafka allows: classic groups with the
range and cooperative-sticky assignors (each client runs the same-named assignor), static
membership (group.instance.id), and KIP-848 groups (group.protocol=consumer) whose assignment
the broker computes for Java and librdkafka members alike.

The Java members of the whole module live in one JVM (tests/java/src/clients/GroupMembers.java),
started and stopped by commands; librdkafka members are processes (tests/groups/member.py). Both write
the same events, so ownership is replayed the same way for either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The groups suites' fixtures, used here as they are: `gbroker` (a broker tuned for fast rebalances,
# one per module) and `members` (librdkafka member processes).
from tests.groups.conftest import Member, Members, gbroker, members, wait_until  # noqa: F401
from tests.helpers import (
    BrokerProcess,
    ExternalBroker,
    Rec,
    confluent_admin,
    confluent_produce,
    create_topic,
    wait_for,
)
from tests.java.scenarios import InteractiveJava

RECORDS = 40  # per topic, spread over its partitions before the members start


@pytest.fixture(scope="module")
def jvm(gbroker: BrokerProcess | ExternalBroker, java_classes: Path) -> Iterator[InteractiveJava]:  # noqa: F811
    proc = InteractiveJava(java_classes, "clients.GroupMembers", gbroker.bootstrap)
    try:
        yield proc
    finally:
        assert proc.close() == 0, proc.tail()


class JavaMember:
    """One Java consumer of the module's JVM, seen through the events it printed."""

    def __init__(self, jvm: InteractiveJava, name: str, topic: str, **conf: str) -> None:
        self.jvm, self.name = jvm, name
        jvm.send("start", name, topic, *(f"{k}={v}" for k, v in conf.items()))

    def events(self) -> list[dict[str, Any]]:
        return self.jvm.events(member=self.name)

    def messages(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["ev"] == "msg"]

    def _replay(self, key: str) -> set[Any]:
        """What is owned now: the Java listener reports every change (an eager rebalance revokes
        everything first), so assign adds and revoke / lost remove."""
        owned: set[Any] = set()
        for e in self.events():
            if e["ev"] == "assign":
                owned |= set(e[key])
            elif e["ev"] in ("revoke", "lost"):
                owned -= set(e[key])
        return owned

    def owned(self) -> set[int]:
        """Partitions owned now (of the member's one topic)."""
        return self._replay("parts")

    def owned_tps(self) -> set[str]:
        """As owned(), by "topic-partition" (for members of several topics)."""
        return self._replay("tps")

    def stop(self) -> None:
        self.jvm.send("stop", self.name)
        self.jvm.wait_event(member=self.name, ev="closed")

    def errors(self) -> list[dict[str, Any]]:
        """Errors other than a commit refused during a rebalance (the Java client's
        CommitFailedException, which Kafka gives too when a commit races a new generation or
        member epoch: the records are consumed again, nothing is lost)."""
        return [e for e in self.events() if e["ev"] == "error" and e["code"] != "CommitFailedException"]


AnyMember = JavaMember | Member


def _revoked(m: AnyMember) -> list[int]:
    return [p for e in m.events() if e["ev"] == "revoke" for p in e["parts"]]


def _shares(ms: list[AnyMember]) -> list[set[int]]:
    return [m.owned() for m in ms]


def _split(ms: list[AnyMember], partitions: int, sizes: list[int] | None = None) -> bool:
    """Every partition owned by exactly one member, in shares of `sizes` (default: balanced)."""
    owned = _shares(ms)
    counts = [len(o) for o in owned]
    if len(set().union(*owned)) != partitions or sum(counts) != partitions:
        return False
    return counts == sizes if sizes is not None else max(counts) - min(counts) <= 1


def _detail(ms: list[AnyMember]) -> Any:
    def show() -> str:
        return "\n".join(f"{type(m).__name__} owns {sorted(m.owned())}; last events "
                         f"{[e for e in m.events() if e['ev'] != 'msg'][-6:]}" for m in ms)
    return show


def _java_describe(jvm: InteractiveJava, group: str) -> dict[str, Any]:
    """The group as the Java admin describes it (ConsumerGroupDescribe, else DescribeGroups)."""
    seen = len(jvm.events(describe=group))
    jvm.send("describe", group)
    wait_for(lambda: len(jvm.events(describe=group)) > seen, timeout=30, what=f"a description of {group}")
    desc = jvm.events(describe=group)[seen]
    assert "error" not in desc, desc
    return desc


def _consumed(ms: list[AnyMember]) -> set[str]:
    return {e["v"] for m in ms for e in m.messages()}


def _topic(bootstrap: str, name: str, partitions: int) -> str:
    create_topic(bootstrap, name, partitions=partitions)
    confluent_produce(bootstrap, name, [Rec(key=None, value=b"%d" % i, partition=i % partitions)
                                        for i in range(RECORDS)])
    return name


def _group_members(bootstrap: str, group: str) -> tuple[Any, list[tuple[str, str | None]]]:
    """The group's type and (client id, group instance id) of its members, as librdkafka's admin sees them."""
    admin = confluent_admin(bootstrap)  # held until the answer came: a destroyed client never answers
    [future] = admin.describe_consumer_groups([group], request_timeout=10).values()
    desc = future.result(timeout=30)
    return desc, sorted((m.client_id, m.group_instance_id) for m in desc.members)


@pytest.mark.timeout(100)
def test_classic_range_java_and_librdkafka(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava,  # noqa: F811
                                           members: Members) -> None:  # noqa: F811
    topic = _topic(gbroker.bootstrap, "java-groups-range", 4)
    group = "g-java-range"
    java = {"group.id": group, "partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor",
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
    a = JavaMember(jvm, "range-a", topic, **java)
    b = JavaMember(jvm, "range-b", topic, **java)
    wait_until(lambda: _split([a, b], 4, [2, 2]), 60, "two Java range members with 2 partitions each",
               detail=_detail([a, b]))
    c = members.start(gbroker.bootstrap, group, topic, strategy="range", session_ms=6000, heartbeat_ms=500)
    ms: list[AnyMember] = [a, b, c]
    wait_until(lambda: _split(ms, 4), 60, "Java and librdkafka range members sharing 4 partitions",
               detail=_detail(ms))
    desc, described = _group_members(gbroker.bootstrap, group)
    assert desc.partition_assignor == "range"
    assert [client for client, _ in described] == ["range-a", "range-b", "rdkafka"]
    # The Java admin decodes every member's assignment, librdkafka's too.
    java_desc = _java_describe(jvm, group)
    assert (java_desc["type"], java_desc["state"], java_desc["assignor"]) == ("Classic", "Stable", "range")
    assert [m["client_id"] for m in java_desc["members"]] == ["range-a", "range-b", "rdkafka"]
    assert sorted(tp for m in java_desc["members"] for tp in m["assigned"]) == [f"{topic}-{p}" for p in range(4)]
    wait_until(lambda: _consumed(ms) >= {str(i) for i in range(RECORDS)}, 60, "every record consumed",
               detail=_detail(ms))
    a.stop()
    wait_until(lambda: _split([b, c], 4, [2, 2]), 60, "the Java member's partitions moved to the others",
               detail=_detail([b, c]))
    assert not a.errors() and not b.errors(), (a.errors(), b.errors())


@pytest.mark.timeout(100)
def test_cooperative_sticky_java_and_librdkafka(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava,  # noqa: F811
                                                members: Members) -> None:  # noqa: F811
    topic = _topic(gbroker.bootstrap, "java-groups-coop", 6)
    group = "g-java-coop"
    java = {"group.id": group,
            "partition.assignment.strategy": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
    a = JavaMember(jvm, "coop-a", topic, **java)
    b = JavaMember(jvm, "coop-b", topic, **java)
    wait_until(lambda: _split([a, b], 6, [3, 3]), 60, "two Java cooperative members with 3 partitions each",
               detail=_detail([a, b]))
    before = [set(_revoked(m)) for m in (a, b)]
    c = members.start(gbroker.bootstrap, group, topic, strategy="cooperative-sticky", session_ms=6000,
                      heartbeat_ms=500)
    ms: list[AnyMember] = [a, b, c]
    wait_until(lambda: _split(ms, 6, [2, 2, 2]), 60, "Java and librdkafka cooperative members with 2 each",
               detail=_detail(ms))
    # Incremental: the Java members gave up only what the newcomer took, and kept the rest throughout.
    for m, had in zip((a, b), before, strict=True):
        assert set(_revoked(m)) - had <= c.owned(), _detail(ms)()
    kept = [m.owned() for m in (a, b)]
    revokes = [len(_revoked(m)) for m in (a, b)]
    assert c.stop() == 0, c.stderr()
    wait_until(lambda: _split([a, b], 6, [3, 3]), 60, "the librdkafka member's partitions back to the Java ones",
               detail=_detail([a, b]))
    assert [len(_revoked(m)) for m in (a, b)] == revokes
    assert all(had <= m.owned() for m, had in zip((a, b), kept, strict=True))
    assert _consumed(ms) >= {str(i) for i in range(RECORDS)}
    a.stop()
    b.stop()


@pytest.mark.timeout(100)
def test_static_membership(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava) -> None:  # noqa: F811
    topic = _topic(gbroker.bootstrap, "java-groups-static", 4)
    group = "g-java-static"
    java = {"group.id": group, "partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor",
            "session.timeout.ms": "30000", "heartbeat.interval.ms": "500"}
    a = JavaMember(jvm, "static-a", topic, **{**java, "group.instance.id": "instance-a"})
    b = JavaMember(jvm, "static-b", topic, **{**java, "group.instance.id": "instance-b"})
    wait_until(lambda: _split([a, b], 4, [2, 2]), 60, "two static members with 2 partitions each",
               detail=_detail([a, b]))
    _, described = _group_members(gbroker.bootstrap, group)
    assert described == [("static-a", "instance-a"), ("static-b", "instance-b")]
    had, b_events = a.owned(), len(b.events())
    a.stop()  # a static member closes without leaving: its partitions wait for it
    again = JavaMember(jvm, "static-a2", topic, **{**java, "group.instance.id": "instance-a"})
    wait_until(lambda: again.owned() == had, 60, "the restarted static member given its partitions back",
               detail=_detail([again, b]))
    # No rebalance: the other member was never asked to give anything up.
    assert not [e for e in b.events()[b_events:] if e["ev"] in ("revoke", "lost")], _detail([again, b])()
    # The same two instances (Kafka's replaceStaticMember keeps the member's first client id).
    _, described = _group_members(gbroker.bootstrap, group)
    assert [instance for _, instance in described] == ["instance-a", "instance-b"]
    # Closed again, instance-a keeps its place until the admin removes it (LeaveGroup by instance id):
    # then the other member takes everything, long before the 30 s session would have ended.
    again.stop()
    jvm.send("remove", group, "instance-a")
    assert jvm.wait_event(removed="instance-a")["error"] is None
    wait_until(lambda: b.owned() == {0, 1, 2, 3}, 20, "the remaining static member owning every partition",
               detail=_detail([b]))
    b.stop()


@pytest.mark.timeout(100)
def test_consumer_protocol_java_and_librdkafka(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava,  # noqa: F811
                                               members: Members) -> None:  # noqa: F811
    topic = _topic(gbroker.bootstrap, "java-groups-kip848", 6)
    group = "g-java-kip848"
    a = JavaMember(jvm, "kip848-a", topic, **{"group.id": group, "group.protocol": "consumer"})
    b = JavaMember(jvm, "kip848-b", topic, **{"group.id": group, "group.protocol": "consumer"})
    wait_until(lambda: _split([a, b], 6, [3, 3]), 60, "two Java KIP-848 members with 3 partitions each",
               detail=_detail([a, b]))
    c = members.start(gbroker.bootstrap, group, topic, protocol="consumer")
    ms: list[AnyMember] = [a, b, c]
    wait_until(lambda: _split(ms, 6, [2, 2, 2]), 60, "Java and librdkafka KIP-848 members with 2 each",
               detail=_detail(ms))
    desc, described = _group_members(gbroker.bootstrap, group)
    assert [client for client, _ in described] == ["kip848-a", "kip848-b", "rdkafka"]
    assert str(desc.type) == "ConsumerGroupType.CONSUMER"
    java_desc = _java_describe(jvm, group)
    assert (java_desc["type"], java_desc["state"]) == ("Consumer", "Stable")
    assert [m["client_id"] for m in java_desc["members"]] == ["kip848-a", "kip848-b", "rdkafka"]
    assert sorted(tp for m in java_desc["members"] for tp in m["assigned"]) == [f"{topic}-{p}" for p in range(6)]
    # KIP-1099: "upgraded" says a member speaks the consumer protocol (librdkafka's too).
    assert all(0 < m["epoch"] <= java_desc["group_epoch"] and m["upgraded"] is True for m in java_desc["members"]), java_desc
    wait_until(lambda: _consumed(ms) >= {str(i) for i in range(RECORDS)}, 60, "every record consumed",
               detail=_detail(ms))
    revokes = [len(_revoked(m)) for m in (a, b)]
    assert c.stop() == 0, c.stderr()
    wait_until(lambda: _split([a, b], 6, [3, 3]), 60, "the librdkafka member's partitions to the Java ones",
               detail=_detail([a, b]))
    assert [len(_revoked(m)) for m in (a, b)] == revokes  # they only gained
    a.stop()
    wait_until(lambda: _split([b], 6, [6]), 60, "the last Java member owning every partition", detail=_detail([b]))
    assert not a.errors() and not b.errors(), (a.errors(), b.errors())


@pytest.mark.timeout(180)
def test_consumer_protocol_regex_subscription(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava) -> None:  # noqa: F811
    """A broker-side regex (KIP-848 SubscribedTopicRegex, Java's SubscriptionPattern): the members
    get the matching topics, and a matching topic created later joins their assignment."""
    group = "g-java-regex"
    _topic(gbroker.bootstrap, "java-regex-a", 2)
    conf = {"group.id": group, "group.protocol": "consumer"}
    a = JavaMember(jvm, "regex-a", "re2:java-regex-.*", **conf)
    b = JavaMember(jvm, "regex-b", "re2:java-regex-.*", **conf)
    ms = [a, b]

    def split(tps: set[str]) -> bool:
        owned = [m.owned_tps() for m in ms]
        return owned[0] | owned[1] == tps and not owned[0] & owned[1] and len(owned[0]) == len(owned[1])

    first = {"java-regex-a-0", "java-regex-a-1"}
    wait_until(lambda: split(first), 60, "the regex members sharing java-regex-a", detail=_detail(list(ms)))
    _topic(gbroker.bootstrap, "java-regex-b", 2)
    create_topic(gbroker.bootstrap, "java-other", partitions=1)
    wait_until(lambda: split(first | {"java-regex-b-0", "java-regex-b-1"}), 60,
               "the new matching topic in the assignment", detail=_detail(list(ms)))
    a.stop()
    b.stop()
    assert not a.errors() and not b.errors(), (a.errors(), b.errors())


@pytest.mark.timeout(180)
def test_consumer_protocol_static_membership(gbroker: BrokerProcess | ExternalBroker, jvm: InteractiveJava) -> None:  # noqa: F811
    """KIP-848 static members: one closes (a temporary leave, epoch -2) and comes back with the
    same group.instance.id within the session; it gets its partitions back, the other keeps its own."""
    topic = _topic(gbroker.bootstrap, "java-groups-kip848-static", 4)
    conf = {"group.id": "g-java-kip848-static", "group.protocol": "consumer"}
    a = JavaMember(jvm, "kip848-static-a", topic, **{**conf, "group.instance.id": "kip848-a"})
    b = JavaMember(jvm, "kip848-static-b", topic, **{**conf, "group.instance.id": "kip848-b"})
    wait_until(lambda: _split([a, b], 4, [2, 2]), 60, "two static KIP-848 members with 2 partitions each",
               detail=_detail([a, b]))
    had, b_had, b_events = a.owned(), b.owned(), len(b.events())
    a.stop()
    again = JavaMember(jvm, "kip848-static-a2", topic, **{**conf, "group.instance.id": "kip848-a"})
    wait_until(lambda: again.owned() == had, 60, "the static member's partitions back after its restart",
               detail=_detail([again, b]))
    assert b.owned() == b_had
    assert not [e for e in b.events()[b_events:] if e["ev"] in ("revoke", "lost")], _detail([again, b])()
    again.stop()
    b.stop()
    assert not again.errors() and not b.errors(), (again.errors(), b.errors())
