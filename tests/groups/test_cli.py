"""`pyk groups list | describe | delete | reset-offsets` against a running broker (run as
`python -m pyk groups ...`, as a user would)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from tests.groups.conftest import Members, wait_until
from tests.groups.test_persistence import group_consumer
from tests.helpers import REPO, Rec, confluent_produce, create_topic, unique_topic


def pyk_groups(bootstrap: str, *args: str, terminal: bool = False) -> subprocess.CompletedProcess[str]:
    """Its output in a pipe (tab-separated), or as on a terminal (rich's TTY_COMPATIBLE=1)."""
    env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "200"} if terminal else None
    return subprocess.run([sys.executable, "-m", "pyk", "groups", "--bootstrap", bootstrap, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=env)


def table(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1:]:
        if not line or line.startswith(("total", "group ", "(dry", "committed", "MEMBER-ID", "TOPIC")):
            break
        rows.append(line.split("\t"))
    return rows


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = group_consumer(bootstrap, group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got}


@pytest.mark.timeout(120)
def test_list_describe_delete(gbroker: Any, members: Members) -> None:
    topic = unique_topic("cli")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=2)
    for p in range(2):
        confluent_produce(gbroker.bootstrap, topic, [Rec(b"k", f"{p}-{i}".encode(), (), None, p) for i in range(5)])
    m = members.start(gbroker.bootstrap, group, topic)
    wait_until(lambda: len(m.messages()) == 10, 30, "the member to consume everything")
    confluent_produce(gbroker.bootstrap, topic, [Rec(b"k", b"late", (), None, 1)] * 3)  # lag... unless consumed
    wait_until(lambda: len(m.messages()) == 13, 30, "the late messages")

    out = pyk_groups(gbroker.bootstrap, "list")
    assert out.returncode == 0, out.stderr
    assert [group, "Stable", "consumer"] in [line.split("\t") for line in out.stdout.splitlines()]
    out = pyk_groups(gbroker.bootstrap, "list", "--state", "Empty")
    assert group not in out.stdout

    out = pyk_groups(gbroker.bootstrap, "describe", group)
    assert out.returncode == 0, out.stderr
    assert f"group {group}  state Stable  protocol consumer/range  members 1" in out.stdout
    [member] = table(out.stdout, "MEMBER-ID")
    assert member[4] == f"{topic}:0,1"
    rows = table(out.stdout, "TOPIC")
    assert [r[:5] for r in rows] == [[topic, "0", "5", "5", "0"], [topic, "1", "8", "8", "0"]]
    assert rows[0][5] == member[0]
    shown = pyk_groups(gbroker.bootstrap, "describe", group, terminal=True).stdout
    assert "\t" not in shown and "current-offset" in shown
    assert any(line.startswith("│") and topic in line and member[0] in line for line in shown.splitlines())

    assert m.stop() == 0
    confluent_produce(gbroker.bootstrap, topic, [Rec(b"k", b"more", (), None, 0)] * 4)
    out = pyk_groups(gbroker.bootstrap, "describe", group)
    assert "state Empty" in out.stdout and "total lag 4" in out.stdout, out.stdout
    assert [r[:5] for r in table(out.stdout, "TOPIC")][0] == [topic, "0", "5", "9", "4"]

    out = pyk_groups(gbroker.bootstrap, "delete", group, f"{group}-nope")
    assert out.returncode == 1
    assert f"deleted {group}" in out.stdout and "GROUP_ID_NOT_FOUND" in out.stdout
    assert group not in pyk_groups(gbroker.bootstrap, "list").stdout


@pytest.mark.timeout(120)
def test_reset_offsets(gbroker: Any, members: Members) -> None:
    topic = unique_topic("cli-reset")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=2)
    t0 = int(time.time() * 1000) - 60_000
    for p in range(2):
        confluent_produce(gbroker.bootstrap, topic, [Rec(b"k", f"{p}-{i}".encode(), (), t0 + i * 1000, p)
                                                     for i in range(10)])
    c = group_consumer(gbroker.bootstrap, group)
    c.assign([TopicPartition(topic, 0, 0)])
    c.commit(offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 6)], asynchronous=False)
    c.close()

    out = pyk_groups(gbroker.bootstrap, "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert table(out.stdout, "TOPIC") == [[topic, "0", "4", "0"], [topic, "1", "6", "0"]]
    assert committed(gbroker.bootstrap, group, topic, 2) == {0: 4, 1: 6}  # dry run: unchanged

    def reset(*how: str) -> dict[int, int]:
        result = pyk_groups(gbroker.bootstrap, "reset-offsets", group, *how)
        assert result.returncode == 0, result.stdout + result.stderr
        return committed(gbroker.bootstrap, group, topic, 2)

    assert reset("--topic", topic, "--to-latest") == {0: 10, 1: 10}
    assert reset("--topic", f"{topic}:1", "--to-earliest") == {0: 10, 1: 0}
    assert reset("--all-topics", "--shift-by", "3") == {0: 10, 1: 3}  # clamped at the log end
    assert reset("--topic", topic, "--shift-by", "-5") == {0: 5, 1: 0}  # clamped at the log start
    assert reset("--topic", topic, "--to-offset", "7") == {0: 7, 1: 7}
    when = datetime.fromtimestamp((t0 + 2500) / 1000, tz=timezone.utc).isoformat()
    assert reset("--topic", topic, "--to-datetime", when) == {0: 3, 1: 3}
    shown = pyk_groups(gbroker.bootstrap, "reset-offsets", group, "--all-topics", "--to-earliest", terminal=True)
    assert shown.returncode == 0 and "new offsets of" in shown.stdout and "looking up offsets" in shown.stderr

    # an active group's offsets are not touched
    m = members.start(gbroker.bootstrap, group, topic)
    wait_until(lambda: m.owned(), 30, "an active member")
    out = pyk_groups(gbroker.bootstrap, "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert out.returncode == 1 and "active members" in out.stdout
    assert m.stop() == 0
