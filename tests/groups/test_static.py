"""Static membership (KIP-345) with librdkafka: a restarted static member gets its partitions back
without a rebalance, and a second client with the same group.instance.id fences the first."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.groups.conftest import Members, wait_until
from tests.helpers import ExternalBroker, create_topic, unique_topic


def events(m: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in m.events() if e["ev"] == kind]


@pytest.mark.timeout(120)
def test_static_member_restart_keeps_its_partitions_without_rebalance(gbroker: Any, members: Members) -> None:
    if isinstance(gbroker, ExternalBroker):
        pytest.skip("the broker's log shows whether a rebalance began")
    topic = unique_topic("static")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=4)
    opts = {"session_ms": 6000, "heartbeat_ms": 200}
    a = members.start(gbroker.bootstrap, group, topic, instance_id="pod-a", **opts)
    b = members.start(gbroker.bootstrap, group, topic, instance_id="pod-b", **opts)
    wait_until(lambda: len(a.owned()) == 2 and len(b.owned()) == 2, 30, "two static members, 2 partitions each")
    mine = a.owned()
    b_before = (len(events(b, "assign")), len(events(b, "revoke")))
    rebalances = gbroker.log_text().count(f"group {group}: preparing to rebalance")
    assert a.stop() == 0  # a static member closes without LeaveGroup: it keeps its place
    a2 = members.start(gbroker.bootstrap, group, topic, instance_id="pod-a", **opts)
    wait_until(lambda: a2.owned(), 20, "the restarted member's assignment")
    assert a2.owned() == mine
    # The broker's own record that the rejoin was served from the stable generation, and that
    # no rebalance began (a rebalance starts on the broker before any member can see it).
    assert re.search(rf"group {group}: static member pod-a \(\S+\) replaced by \S+ in state Stable", gbroker.log_text())
    assert gbroker.log_text().count(f"group {group}: preparing to rebalance") == rebalances, gbroker.log_tail()
    assert (len(events(b, "assign")), len(events(b, "revoke"))) == b_before, b.events()
    assert not [e for e in a2.events() + b.events() if e["ev"] == "error"]


@pytest.mark.timeout(120)
def test_duplicate_instance_id_is_fenced(gbroker: Any, members: Members) -> None:
    topic = unique_topic("fenced")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=2)
    opts = {"session_ms": 6000, "heartbeat_ms": 200}
    first = members.start(gbroker.bootstrap, group, topic, instance_id="same", **opts)
    wait_until(lambda: len(first.owned()) == 2, 30, "the first member's assignment")
    second = members.start(gbroker.bootstrap, group, topic, instance_id="same", **opts)
    wait_until(lambda: len(second.owned()) == 2, 30, "the second member to take over the instance id")
    fatal = wait_until(lambda: [e for e in first.events() if e["ev"] == "error" and e["fatal"]], 20,
                       "the first member to be fenced")
    assert fatal[0]["code"] == "_FATAL" and "fenced" in first.stderr(), (fatal, first.stderr())
    assert first.proc.wait(20) == 0  # the fenced client gives up
    assert second.owned() == {0, 1} and not [e for e in second.events() if e["ev"] == "error"]
