"""Measurements for issue 5 (soak: not in the default run; `pytest -m soak tests/groups -s`).

  * join -> stable: a member joins a stable group of N-1; time until all N hold their new
    assignment (librdkafka consumers, all in this process, each polled by its own thread);
  * death -> resumed: one of N members is killed (SIGKILL, its own process); time until the
    survivors own all partitions again, and the part of it beyond the session timeout;
  * offset commit throughput of one client: confluent-kafka synchronous commits, and pipelined
    OffsetCommit requests on one connection (what the coordinator itself sustains).

Numbers are printed; the assertions only check that things happened, not how fast (shared CI).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from pyk.protocol.apis import ApiKey
from tests.groups.conftest import Members, wait_until
from tests.groups.test_wire import coordinator
from tests.helpers import create_topic, unique_topic

pytestmark = pytest.mark.soak

SESSION_MS = 3000
HEARTBEAT_MS = 300


class InProcessMember:
    """A librdkafka consumer polled by its own thread; records when its assignment last changed."""

    def __init__(self, bootstrap: str, group: str, topic: str, strategy: str) -> None:
        self.owned: set[int] = set()
        self.changed = self.changed_wall = 0.0
        self.stop = threading.Event()
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                           "enable.auto.commit": False, "session.timeout.ms": SESSION_MS,
                           "heartbeat.interval.ms": HEARTBEAT_MS, "partition.assignment.strategy": strategy,
                           "fetch.wait.max.ms": 100})
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _assign(self, c: Any, parts: list[Any]) -> None:
        self.owned |= {p.partition for p in parts}
        self.changed, self.changed_wall = time.monotonic(), time.time()

    def _revoke(self, c: Any, parts: list[Any]) -> None:
        self.owned -= {p.partition for p in parts}
        self.changed, self.changed_wall = time.monotonic(), time.time()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.c.poll(0.05)
        self.c.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def settled(ms: list[Any], partitions: int) -> bool:
    owned = [m.owned() if callable(m.owned) else m.owned for m in ms]
    return sum(len(o) for o in owned) == partitions and len(set().union(*owned)) == partitions and all(owned)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n", [3, 30])
def test_join_to_stable(gbroker: Any, n: int) -> None:
    topic = unique_topic(f"join{n}")
    partitions = 2 * n
    create_topic(gbroker.bootstrap, topic, partitions=partitions)
    group = f"g-{topic}"
    ms = [InProcessMember(gbroker.bootstrap, group, topic, "range") for _ in range(n - 1)]
    try:
        wait_until(lambda: settled(ms, partitions), 120, f"{n - 1} members to settle")
        time.sleep(1)
        started = time.monotonic()
        ms.append(InProcessMember(gbroker.bootstrap, group, topic, "range"))
        wait_until(lambda: settled(ms, partitions) and all(len(m.owned) == 2 for m in ms), 120,
                   f"{n} members with 2 partitions each")
        took = max(m.changed for m in ms) - started
        print(f"\n[measure] join -> stable, {n} members (eager range): {took * 1000:.0f} ms")
    finally:
        for m in ms:
            m.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("n", [3, 30])
def test_death_to_resumed(gbroker: Any, members: Members, n: int) -> None:
    topic = unique_topic(f"death{n}")
    partitions = 2 * n
    create_topic(gbroker.bootstrap, topic, partitions=partitions)
    group = f"g-{topic}"
    ms = [InProcessMember(gbroker.bootstrap, group, topic, "range") for _ in range(n - 1)]
    victim = members.start(gbroker.bootstrap, group, topic, session_ms=SESSION_MS, heartbeat_ms=HEARTBEAT_MS)
    try:
        wait_until(lambda: settled([*ms, victim], partitions), 120, f"{n} members to settle")
        time.sleep(1)
        killed = time.monotonic()
        victim.kill()
        wait_until(lambda: settled(ms, partitions) and max(m.changed for m in ms) > killed, 120,
                   "the survivors to own every partition")
        took = max(m.changed for m in ms) - killed
        expired = _expiry_time(gbroker, group)
        rebalance = f"{(max(m.changed_wall for m in ms) - expired) * 1000:.0f} ms" if expired else "?"
        print(f"\n[measure] death -> survivors resumed, {n} members: {took * 1000:.0f} ms "
              f"(session.timeout.ms={SESSION_MS}, heartbeat.interval.ms={HEARTBEAT_MS}); "
              f"from the coordinator's expiry of the member to the last new assignment: {rebalance}")
    finally:
        for m in ms:
            m.close()


def _expiry_time(gbroker: Any, group: str) -> float | None:
    """Wall-clock time of the broker's "member ... expired" line for `group` (its log's local time)."""
    if not hasattr(gbroker, "log_text"):
        return None
    for line in gbroker.log_text().splitlines():
        if f"group {group}: member" in line and "expired" in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


@pytest.mark.timeout(300)
def test_commit_throughput(gbroker: Any) -> None:
    topic = unique_topic("commits")
    create_topic(gbroker.bootstrap, topic, partitions=1)
    group = f"g-{topic}"
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)  # coordinator found
    n = 2000
    started = time.monotonic()
    for i in range(n):
        c.commit(offsets=[TopicPartition(topic, 0, i + 1)], asynchronous=False)
    sync_rate = n / (time.monotonic() - started)
    c.close()

    body = {"group_id": group, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 0,
                                                      "committed_leader_epoch": -1, "committed_metadata": ""}]}]}
    window = 100
    n = 20000
    with coordinator(gbroker, group) as wire:
        started = time.monotonic()
        for i in range(n):
            body["topics"][0]["partitions"][0]["committed_offset"] = i
            wire.send(ApiKey.OFFSET_COMMIT, 8, body)
            if len(wire.pending) >= window:
                assert wire.recv()["topics"][0]["partitions"][0]["error_code"] == 0
        while wire.pending:
            assert wire.recv()["topics"][0]["partitions"][0]["error_code"] == 0
        pipelined_rate = n / (time.monotonic() - started)
    print(f"\n[measure] offset commits, one client: confluent-kafka synchronous {sync_rate:,.0f}/s; "
          f"pipelined OffsetCommit v8 ({window} in flight) {pipelined_rate:,.0f}/s")
