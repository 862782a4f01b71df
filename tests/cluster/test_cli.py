"""`pyk cluster up --hosts 3 --zookeepers 3` / `pyk cluster down`, as the README runs them: three
hosts and a three-server ZooKeeper ensemble on loopback ports, a replicated topic served from any
host, everything stopped after.  (Every other cluster test starts a standalone ZooKeeper through
the same code.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, confluent_produce, confluent_read_to_end, make_records, unique_topic, wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_cluster_up_serves_a_replicated_topic_and_down_stops_everything(tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    up = subprocess.run([sys.executable, "-m", "pyk", "cluster", "up", "--hosts", "3", "--zookeepers", "3",
                         "--dir", str(tmp_path)],
                        cwd=REPO, capture_output=True, text=True, timeout=180)
    state = json.loads((tmp_path / "cluster.json").read_text()) if (tmp_path / "cluster.json").exists() else None
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert next(line for line in up.stdout.splitlines() if line.startswith("ZooKeeper: ")).count(",") == 2
        bootstrap = next(line.split(": ")[1] for line in up.stdout.splitlines() if line.startswith("bootstrap: "))
        admin = AdminClient({"bootstrap.servers": bootstrap})
        nodes = wait_for(lambda: (b := sorted(admin.list_topics(timeout=10).brokers)) == [1, 101, 201] and b,
                         timeout=60, what="three registered nodes")
        assert nodes == [1, 101, 201]
        topic = unique_topic("cluster-up")
        admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(30)
        records = make_records(100)
        confluent_produce(bootstrap, topic, records, acks="all")
        for host in bootstrap.split(","):
            assert [r.value for r in confluent_read_to_end(host, topic)] == [r.value for r in records]
    finally:
        down = subprocess.run([sys.executable, "-m", "pyk", "cluster", "down", "--dir", str(tmp_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert state is not None
    assert len(state["zookeepers"]) == 3
    pids = [*(z["pid"] for z in state["zookeepers"]), *(h["pid"] for h in state["hosts"])]
    assert not [p for p in pids if _alive(p)], "processes left running after pyk cluster down"
    assert not (tmp_path / "cluster.json").exists()
