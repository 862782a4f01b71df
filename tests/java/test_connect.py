"""A Kafka Connect distributed worker on pyk: FileStreamSource -> topic -> FileStreamSink.

The worker keeps its connector configs, source offsets and statuses in compacted topics on pyk
(config.storage.topic & co.) and its sink's progress in a consumer group, so a restarted worker
must find all three and carry on, after a crash of pyk in between: the sink file stays equal to
the source file, line for line, with nothing lost or written twice, and so does the topic (the
source task commits records and offsets in transactions, exactly.once.source.support).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import BrokerFactory
from tests.helpers import confluent_read_to_end, create_topic, free_port, unique_topic, wait_for
from tests.java.jvm import JavaProcess

WORKER_READY_S = 90.0  # JVM, Jetty, the three internal topics and the group join on 2 cores
COPY_S = 60.0


def worker_properties(bootstrap: str, rest_port: int, name: str) -> str:
    props = {
        "bootstrap.servers": bootstrap,
        "group.id": name,
        "config.storage.topic": f"{name}-configs",
        "offset.storage.topic": f"{name}-offsets",
        "status.storage.topic": f"{name}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "3",
        "status.storage.partitions": "1",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "listeners": f"http://127.0.0.1:{rest_port}",
        # Plugins on the class path (connect-file) are found through their ServiceLoader
        # manifests: no reflective scan of every jar at start-up.
        "plugin.discovery": "service_load",
        "offset.flush.interval.ms": "500",  # the sink's file flush and both offset commits
        "scheduled.rebalance.max.delay.ms": "0",  # a restarted worker takes its tasks back at once
        # KIP-618: the source task writes records and offsets in one transaction.
        "exactly.once.source.support": "enabled",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class Rest:
    """The worker's REST API on 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def up(self) -> bool:
        try:
            return bool(self.call("GET", "/connectors") is not None)
        except (OSError, urllib.error.URLError):
            return False

    def running(self, connector: str) -> bool:
        """The connector and every task of it report RUNNING (and it has tasks)."""
        try:
            status = self.call("GET", f"/connectors/{connector}/status")
        except (OSError, urllib.error.URLError):
            return False
        states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])]
        return len(states) > 1 and all(s == "RUNNING" for s in states)


def wait_for_copy(source: Path, sink: Path, worker: JavaProcess) -> None:
    expected = source.read_text()
    deadline = time.monotonic() + COPY_S
    got = ""
    while time.monotonic() < deadline:
        got = sink.read_text() if sink.exists() else ""
        if len(got) >= len(expected):
            break
        time.sleep(0.2)
    assert got.splitlines() == expected.splitlines(), (
        f"sink has {len(got.splitlines())} lines, source {len(expected.splitlines())}\n{worker.log_tail()}"
    )


def test_file_source_to_file_sink_across_worker_restart(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = broker_factory(group_initial_rebalance_delay_ms=0)
    topic, name = unique_topic("connect-lines"), unique_topic("connect")
    create_topic(broker.bootstrap, topic, partitions=1)
    source, sink = tmp_path / "source.txt", tmp_path / "sink.txt"
    source.write_text("".join(f"line {i} of the first run\n" for i in range(300)))
    port = free_port()
    config = tmp_path / "worker.properties"
    config.write_text(worker_properties(broker.bootstrap, port, name))
    worker = JavaProcess(
        "org.apache.kafka.connect.cli.ConnectDistributed", (str(config),), tmp_path / "worker.log"
    )
    rest = Rest(port)
    try:
        worker.start()
        wait_for(rest.up, timeout=WORKER_READY_S, what=f"Connect's REST API\n{worker.log_tail()}")
        rest.call("PUT", f"/connectors/{name}-source/config", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "file": str(source), "topic": topic, "tasks.max": "1",
        })  # fmt: skip
        rest.call("PUT", f"/connectors/{name}-sink/config", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "file": str(sink), "topics": topic, "tasks.max": "1",
        })  # fmt: skip
        for connector in (f"{name}-source", f"{name}-sink"):
            wait_for(lambda c=connector: rest.running(c), timeout=WORKER_READY_S,
                     what=f"{connector} RUNNING\n{worker.log_tail()}")  # fmt: skip
        wait_for_copy(source, sink, worker)

        # A clean stop commits both offsets. pyk then crashes and recovers its log: the
        # restarted worker reads its connectors back from the config topic and resumes after the
        # last committed line on each side.
        worker.stop()
        broker.kill9()
        broker.start()
        with source.open("a") as f:
            f.write("".join(f"line {i} of the second run\n" for i in range(200)))
        worker.start()
        wait_for(rest.up, timeout=WORKER_READY_S, what=f"Connect's REST API again\n{worker.log_tail()}")
        wait_for_copy(source, sink, worker)
        committed = confluent_read_to_end(broker.bootstrap, topic, **{"isolation.level": "read_committed"})
        assert [r.value for r in committed] == source.read_bytes().splitlines()
    finally:
        worker.stop()
