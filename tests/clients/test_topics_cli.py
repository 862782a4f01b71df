"""`pyk topics` against a real broker: create with configs, placement over shards, delete."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO, confluent_produce, make_records


def _topics(bootstrap: str, *args: str, terminal: bool = False) -> subprocess.CompletedProcess[str]:
    """Its output in a pipe (tab-separated), or as on a terminal (rich's TTY_COMPATIBLE=1)."""
    env = {**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "200"} if terminal else None
    return subprocess.run([sys.executable, "-m", "pyk", "topics", "--bootstrap", bootstrap, *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


def test_topics_create_describe_delete(broker, topic):
    out = _topics(broker.bootstrap, "create", topic, "--partitions", "4", "--config", "retention.ms=1234567")
    assert out.returncode == 0 and f"created {topic}" in out.stdout, out.stderr
    confluent_produce(broker.bootstrap, topic, make_records(3, partition=2))
    described = _topics(broker.bootstrap, "describe", topic)
    assert described.returncode == 0, described.stderr
    rows = [line.split("\t") for line in described.stdout.splitlines() if line[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]
    shards = [int(r[2]) for r in rows]
    assert sorted(set(shards)) == list(range(min(4, broker.shards))), "partitions spread over every shard"
    assert [int(r[1]) - int(r[2]) for r in rows] == [1] * 4, "leader node = node.id (1) + shard"
    assert [(int(r[3]), int(r[4])) for r in rows] == [(0, 0), (0, 0), (0, 3), (0, 0)]
    assert "retention.ms=1234567" in described.stdout
    shown = _topics(broker.bootstrap, "describe", topic, terminal=True).stdout
    assert "\t" not in shown and "log-start" in shown
    assert sum(line.startswith("│") for line in shown.splitlines()) == 4  # a row per partition
    assert topic in _topics(broker.bootstrap, "list").stdout
    assert _topics(broker.bootstrap, "delete", topic).returncode == 0
    assert topic not in _topics(broker.bootstrap, "list").stdout
    missing = _topics(broker.bootstrap, "describe", topic)
    assert missing.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stdout
