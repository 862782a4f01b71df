"""Dynamic membership with real clients: members share partitions, a dead member's partitions
move to the survivors after its session timeout, a new member takes its share, and with
commits after processing every produced message is consumed at least once.

Members run as their own processes (tests/groups/member.py) so one can be killed with SIGKILL:
no LeaveGroup, the coordinator only notices the silence.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.groups.conftest import Member, Members, describe_members, wait_until
from tests.helpers import create_topic, unique_topic

SESSION_MS = 2000


class Feeder:
    """Produces "0", "1", ... round-robin over the partitions until stopped (rate-limited)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, per_second: int = 200) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic, self.partitions, self.per_second = topic, partitions, per_second
        self.sent = 0
        self.errors: list[Any] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - started) * self.per_second)
            while self.sent < due:
                self.producer.produce(self.topic, str(self.sent).encode(), partition=self.sent % self.partitions,
                                      on_delivery=self._delivered)
                self.sent += 1
            self.producer.poll(0.01)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(err)

    def stop(self) -> int:
        self._stop.set()
        self.thread.join(10)
        assert self.producer.flush(20) == 0
        assert not self.errors, self.errors[:3]
        del self.producer  # destroyed now, not whenever the test's frame goes
        return self.sent


def owned_by(ms: list[Member]) -> list[set[int]]:
    return [m.owned() for m in ms]


def balanced(ms: list[Member], partitions: int) -> bool:
    """Every partition owned by exactly one member, and the shares differ by at most one."""
    owned = owned_by(ms)
    union = set().union(*owned)
    sizes = [len(o) for o in owned]
    return (len(union) == partitions and sum(sizes) == partitions
            and max(sizes) - min(sizes) <= 1)


def revoked(m: Member) -> list[int]:
    """Every partition the member revoked, in order (one entry per partition per revocation)."""
    return [p for e in m.events() if e["ev"] == "revoke" for p in e["parts"]]


def consumed_values(ms: list[Member]) -> set[int]:
    return {int(e["v"]) for m in ms for e in m.messages()}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_three_members_kill_one_add_one(gbroker: Any, members: Members, strategy: str) -> None:
    topic = unique_topic("rebalance")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=6)
    feeder = Feeder(gbroker.bootstrap, topic, 6)
    opts = {"strategy": strategy, "session_ms": SESSION_MS, "heartbeat_ms": 200}
    ms = [members.start(gbroker.bootstrap, group, topic, **opts) for _ in range(3)]
    wait_until(lambda: balanced(ms, 6), 30, "three members with 2 partitions each", detail=lambda: describe_members(ms))
    assert all(len(o) == 2 for o in owned_by(ms))
    wait_until(lambda: len(consumed_values(ms)) > 200, 20, "consumption under way")

    # Kill one: no LeaveGroup.  Its partitions move once its session times out.
    killed_at = time.monotonic()
    ms[0].kill()
    survivors = ms[1:]
    wait_until(lambda: balanced(survivors, 6), 30, "survivors to take over all 6 partitions",
               detail=lambda: describe_members(survivors))
    takeover = time.monotonic() - killed_at
    assert takeover >= SESSION_MS / 1000 * 0.8, "partitions moved before the session timeout"

    # Add one: partitions move again, 2 each.
    revokes_before = [len(revoked(m)) for m in survivors]
    ms.append(members.start(gbroker.bootstrap, group, topic, **opts))
    live = ms[1:]
    wait_until(lambda: balanced(live, 6) and all(len(o) == 2 for o in owned_by(live)), 30,
               "three members with 2 partitions each after the join", detail=lambda: describe_members(live))
    if strategy == "cooperative-sticky":
        # Incremental (KIP-429): each survivor gave up exactly the one partition that moved and
        # kept consuming the others throughout; nothing it still owns was ever revoked.
        for m, before in zip(survivors, revokes_before, strict=True):
            moved = revoked(m)[before:]
            assert len(moved) == 1, m.events()
            assert not set(moved) & m.owned()
    else:
        # Eager: every member revokes everything it owns (stop-the-world) on each rebalance.
        assert all(len(revoked(m)) >= 3 for m in survivors)

    total = feeder.stop()
    wait_until(lambda: consumed_values(ms) >= set(range(total)), 30, "every produced message to be consumed",
               detail=lambda: describe_members(ms))
    for m in live:
        assert m.stop() == 0, m.stderr()
    # At least once: everything consumed; duplicates only around the killed member's last commits.
    values = [int(e["v"]) for m in ms for e in m.messages()]
    assert set(values) == set(range(total))
    assert len(values) - total < 200, f"{len(values) - total} duplicates"
    print(f"\n[{strategy}] takeover after kill: {takeover:.2f}s (session.timeout.ms={SESSION_MS}); "
          f"{total} messages, {len(values) - total} redelivered")


@pytest.mark.timeout(120)
def test_two_groups_each_read_everything(gbroker: Any, members: Members) -> None:
    topic = unique_topic("pubsub")
    create_topic(gbroker.bootstrap, topic, partitions=3)
    feeder = Feeder(gbroker.bootstrap, topic, 3, per_second=300)
    g1 = [members.start(gbroker.bootstrap, f"a-{topic}", topic) for _ in range(2)]
    g2 = [members.start(gbroker.bootstrap, f"b-{topic}", topic, strategy="roundrobin")]
    # Both groups consume while the feeder still produces: reading at the log end, not only a backlog.
    wait_until(lambda: consumed_values(g1) and consumed_values(g2), 60, "both groups to consume")
    total = feeder.stop()
    for group in (g1, g2):
        wait_until(lambda group=group: consumed_values(group) >= set(range(total)), 30, "each group to read all")
    for m in g1 + g2:
        assert m.stop() == 0
    assert consumed_values(g1) == consumed_values(g2) == set(range(total))
