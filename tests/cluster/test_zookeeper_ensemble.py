"""A cluster coordinated by a three-server ZooKeeper ensemble on loopback, joined through a
multi-server connect string with a chroot (`127.0.0.1:a,127.0.0.1:b,127.0.0.1:c/pyk`, created by
the hosts as Kafka's brokers create it).  Under an idempotent acks=all stream, kill -9 of the
ZooKeeper server the controller's session is connected to, then (that server back) of the
ensemble's leader: the sessions move to the surviving servers, the hosts keep serving, nothing
acknowledged is lost and metadata changes (a new topic) still work with two of three servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, ZooKeeperEnsemble, ZooKeeperServer
from tests.cluster.test_failover import _check_history, _Stream

CHROOT = "/pyk"


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    servers = ZooKeeperEnsemble.create(tmp_path)
    servers.start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def zookeeper(ensemble: ZooKeeperEnsemble) -> str:
    """The hosts' zookeeper.connect (cluster_factory's): every server, under a chroot."""
    return ensemble.connect + CHROOT


def _controller_session(ensemble: ZooKeeperEnsemble) -> tuple[int, int]:
    """The controller's host id and the session id that owns its /controller node."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=ensemble.connect + CHROOT)
    zk.start(30)
    try:
        data, stat = zk.get("/controller")
        return int(json.loads(data)["brokerid"]), int(stat.ephemeralOwner)
    finally:
        zk.stop()
        zk.close()


def _survive(cluster: Cluster, ensemble: ZooKeeperEnsemble, victim: ZooKeeperServer, topic: str) -> None:
    """kill -9 of `victim` under an acks=all stream; the two left still serve the cluster."""
    stream = _Stream(cluster.bootstrap, topic, total=2000)
    cluster.wait_for("a quarter of the stream acknowledged", lambda: len(stream.acked) >= 500, 60)
    victim.kill9()
    ensemble.wait_serving()  # the two left (a new ZooKeeper leader first, if the leader died)
    cluster.create_topic(f"{topic}-after-{victim.server_id}", partitions=2)  # every partition led, ISRs full
    stream.join()
    _check_history(cluster, topic, stream)


def test_a_cluster_keeps_serving_when_zookeeper_servers_die(cluster_factory: Callable[..., Cluster],
                                                            ensemble: ZooKeeperEnsemble, topic: str) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=ensemble.connect)
    zk.start(30)
    try:
        assert zk.exists(CHROOT) is None
    finally:
        zk.stop()
        zk.close()
    cluster = cluster_factory(hosts=3, zookeeper_session_timeout_ms=10000)
    assert any(f"created the ZooKeeper path {CHROOT}" in h.log_text() for h in cluster.hosts)
    first = f"{topic}-1"
    cluster.create_topic(first, min_insync_replicas=2)
    controller, session = _controller_session(ensemble)
    victim = ensemble.server_of_session(session)
    assert victim is not None, f"no server lists the controller's session {session:#x}"
    print(f"controller host {controller} is connected to ZooKeeper server {victim.server_id} ({victim.mode})")
    _survive(cluster, ensemble, victim, first)
    assert _controller_session(ensemble) == (controller, session), "the controller's session did not survive"

    victim.start()
    ensemble.wait_serving()
    second = f"{topic}-2"
    cluster.create_topic(second, min_insync_replicas=2)
    _survive(cluster, ensemble, ensemble.leader(), second)
    assert not [h.bootstrap for h in cluster.hosts if "ZooKeeper session lost" in h.log_text()]
