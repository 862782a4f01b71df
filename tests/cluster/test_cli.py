"""`pyk cluster up --hosts 3 --zookeepers 3` / `pyk cluster down`, as the README runs them: three
hosts and a three-server ZooKeeper ensemble on loopback ports, a replicated topic served from any
host, everything stopped after; and `--hosts 1 --shards 2`, the way to replicas on one host (its
two shards hold them).  (Every other cluster test starts a standalone ZooKeeper through the same
code.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, confluent_produce, confluent_read_to_end, make_records, unique_topic, wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


# (3, 1, 3) is the README's cluster; one host of two shards under ZooKeeper (`--hosts 1 --shards 2`,
# the way to replicas on one host) is tests/cluster/test_assignment.py's first case.
@pytest.mark.parametrize(("hosts", "shards", "zookeepers"), [(3, 1, 3)])
def test_cluster_up_serves_a_replicated_topic_and_down_stops_everything(tmp_path: Path, hosts: int, shards: int,
                                                                        zookeepers: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    up = subprocess.run([sys.executable, "-m", "pyk", "cluster", "up", "--hosts", str(hosts), "--shards", str(shards),
                         "--zookeepers", str(zookeepers), "--dir", str(tmp_path)],
                        cwd=REPO, capture_output=True, text=True, timeout=180)
    state = json.loads((tmp_path / "cluster.json").read_text()) if (tmp_path / "cluster.json").exists() else None
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert next(line for line in up.stdout.splitlines() if line.startswith("ZooKeeper: ")).count(",") == zookeepers - 1
        bootstrap = next(line.split(": ")[1] for line in up.stdout.splitlines() if line.startswith("bootstrap: "))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        expected = [1 + 100 * h + s for h in range(hosts) for s in range(shards)]
        nodes = wait_for(lambda: (b := sorted(admin.list_topics(timeout=10).brokers)) == expected and b,
                         timeout=60, what=f"nodes {expected} registered")
        assert nodes == expected
        topic = unique_topic("cluster-up")
        admin.create_topics([NewTopic(topic, 1, len(expected))])[topic].result(30)
        assert wait_for(lambda: sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions[0].isrs)
                        == expected, timeout=30, what=f"an ISR of {expected}")
        records = make_records(100)
        confluent_produce(bootstrap, topic, records, acks="all")
        for host in bootstrap.split(","):
            assert [r.value for r in confluent_read_to_end(host, topic)] == [r.value for r in records]
    finally:
        down = subprocess.run([sys.executable, "-m", "pyk", "cluster", "down", "--dir", str(tmp_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert state is not None
    assert len(state["zookeepers"]) == zookeepers
    pids = [*(z["pid"] for z in state["zookeepers"]), *(h["pid"] for h in state["hosts"])]
    assert not [p for p in pids if _alive(p)], "processes left running after pyk cluster down"
    assert not (tmp_path / "cluster.json").exists()
