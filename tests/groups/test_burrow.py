"""Burrow, LinkedIn's lag monitor, pointed at pyk lists a group and its lag.

Burrow reads `__consumer_offsets` directly and decodes the records with Kafka's schemas, so
this checks the on-disk format end to end with a tool written against Kafka, not pyk.  It
needs Debian's `burrow` (binary /usr/bin/Burrow) and `zookeeper` (Burrow keeps its own state
there); the test is skipped where they are absent and runs in CI, which installs both.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from pyk.protocol.apis import ApiKey
from tests.groups.conftest import wait_until
from tests.groups.test_persistence import consume, fill, group_consumer
from tests.helpers import api_versions_probe, create_topic, free_port, unique_topic

BURROW = shutil.which("Burrow") or shutil.which("burrow")
ZK_SERVER = shutil.which("zkServer.sh") or next(
    (p for p in ("/usr/share/zookeeper/bin/zkServer.sh",) if Path(p).exists()), None)

pytestmark = pytest.mark.skipif(BURROW is None or ZK_SERVER is None,
                                reason="needs Burrow and ZooKeeper (Debian packages burrow, zookeeper)")


def _wait_port(port: int, timeout: float) -> None:
    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_until(up, timeout, f"a listener on port {port}")


@pytest.fixture
def zookeeper(tmp_path: Path) -> Any:
    port = free_port()
    conf = tmp_path / "zoo.cfg"
    conf.write_text(f"tickTime=2000\ndataDir={tmp_path / 'zk-data'}\nclientPort={port}\n"
                    "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
    log = open(tmp_path / "zookeeper.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([ZK_SERVER, "start-foreground", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/bin:/bin", "ZOO_LOG_DIR": str(tmp_path)})
    try:
        _wait_port(port, 60)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _burrow_config(directory: Path, zk: str, bootstrap: str, http_port: int) -> None:
    (directory / "burrow.toml").write_text(f"""
[general]
pidfile="{directory / 'burrow.pid'}"

[logging]
level="info"

[zookeeper]
servers=["{zk}"]
timeout=6
root-path="/burrow"

[client-profile.pyk]
client-id="burrow"
kafka-version="2.0.0"

[cluster.pyk]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="pyk"
topic-refresh=2
offset-refresh=2

[consumer.pyk]
class-name="kafka"
cluster="pyk"
servers=["{bootstrap}"]
client-profile="pyk"
start-latest=false

[httpserver.default]
address="127.0.0.1:{http_port}"

[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
""")


def _get(port: int, path: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
        return None


@pytest.mark.timeout(180)
def test_burrow_lists_the_group_and_its_lag(gbroker: Any, zookeeper: str, tmp_path: Path) -> None:
    host, port = gbroker.bootstrap.rsplit(":", 1)
    versions = {k: (lo, hi) for k, lo, hi in api_versions_probe(host, int(port))}
    if versions[ApiKey.LIST_OFFSETS][0] > 0:
        # Burrow 1.2 asks for partition end offsets with ListOffsets v0 (sarama's default).
        pytest.skip("the broker does not serve ListOffsets v0, which Burrow needs for lag")
    topic = unique_topic("burrow")
    group = f"g-{topic}"
    create_topic(gbroker.bootstrap, topic, partitions=2)
    fill(gbroker.bootstrap, topic, 2, 50)
    c: Consumer = group_consumer(gbroker.bootstrap, group)
    c.subscribe([topic])
    assert len(consume(c, 100)) == 100
    c.commit(offsets=[TopicPartition(topic, 0, 30), TopicPartition(topic, 1, 40)], asynchronous=False)
    c.close()  # group metadata records: the generation, then the empty group

    http_port = free_port()
    _burrow_config(tmp_path, zookeeper, gbroker.bootstrap, http_port)
    log = open(tmp_path / "burrow.out", "wb")  # noqa: SIM115
    burrow = subprocess.Popen([BURROW, "-config-dir", str(tmp_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def consumers() -> list[str]:
            body = _get(http_port, "/v3/kafka/pyk/consumer")
            return body["consumers"] if body else []

        wait_until(lambda: group in consumers(), 60, "Burrow to list the group",
                   detail=lambda: (tmp_path / "burrow.out").read_text()[-3000:])

        def lag() -> dict[str, Any] | None:
            body = _get(http_port, f"/v3/kafka/pyk/consumer/{group}/lag")
            status = body.get("status") if body else None
            return status if status and status.get("totallag") == 30 else None

        status = wait_until(lag, 60, "Burrow's lag of 20 + 10",
                            detail=lambda: _get(http_port, f"/v3/kafka/pyk/consumer/{group}/lag"))
        by_partition = {p["partition"]: p for p in status["partitions"]}
        assert by_partition[0]["end"]["offset"] == 30 and by_partition[0]["current_lag"] == 20
        assert by_partition[1]["end"]["offset"] == 40 and by_partition[1]["current_lag"] == 10
    finally:
        burrow.terminate()
        try:
            burrow.wait(20)
        except subprocess.TimeoutExpired:
            burrow.kill()
            burrow.wait()
        log.close()
