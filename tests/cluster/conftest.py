"""Fixtures of the cluster tests: a real ZooKeeper (Debian's package, started on a free loopback
port with a temp data dir by pyk.tools.cluster, as `pyk cluster up` does) and real `pyk serve`
hosts joined through it (tests/helpers.BrokerProcess, so logs, tracebacks and exit codes are
checked as for every broker)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyk.tools.cluster import (
    ZooKeeperPorts,
    connect_string,
    ensemble_ports,
    four_letter_word,
    host_overrides,
    server_mode,
    start_zookeeper,
    wait_serving,
    zookeeper_script,
)
from tests.cluster.netns import Network, namespaces_available
from tests.conftest import BrokerFactory
from tests.helpers import BrokerProcess, free_port


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here needs a ZooKeeper server (ci/install.sh --test installs Debian's)."""
    if zookeeper_script() is None:
        here = Path(__file__).parent
        for item in items:
            if here in Path(item.fspath).parents:
                item.add_marker(pytest.mark.skip(reason="needs Debian's zookeeper package"))


SESSION_TIMEOUT_MS = 3000  # a dead host's nodes vanish after this; the test ZooKeeper ticks 500 ms


@dataclass
class ZooKeeperServer:
    """The test's ZooKeeper, or one server of an ensemble (`ensemble`, `server_id`): `kill9()`
    and `start()` again on the same port and data."""

    directory: Path
    port: int
    address: str = "127.0.0.1"  # the fault tests' bridge address, which their namespaces reach
    proc: subprocess.Popen[bytes] | None = None
    ensemble: tuple[ZooKeeperPorts, ...] = ()
    server_id: int = 0

    @property
    def connect(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def mode(self) -> str | None:
        """"leader", "follower" or "standalone" while it serves clients."""
        return server_mode(self.port, self.address)

    def start(self) -> None:
        self.proc = start_zookeeper(self.directory, self.port, tick_ms=500, address=self.address,
                                    ensemble=self.ensemble, server_id=self.server_id)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


@dataclass
class ZooKeeperEnsemble:
    """Three ZooKeeper servers on loopback (tests/cluster/test_zookeeper_ensemble.py)."""

    servers: list[ZooKeeperServer]

    @classmethod
    def create(cls, directory: Path, count: int = 3) -> ZooKeeperEnsemble:
        ports = tuple(ensemble_ports(count))
        return cls([ZooKeeperServer(directory / f"zookeeper-{i}", p.client, ensemble=ports, server_id=i)
                    for i, p in enumerate(ports, 1)])

    @property
    def connect(self) -> str:
        return connect_string(self.servers[0].ensemble)

    def start(self) -> None:
        for server in self.servers:
            server.start()
        self.wait_serving()

    def wait_serving(self) -> None:
        wait_serving([s.port for s in self.servers if s.proc is not None and s.proc.poll() is None], 120)

    def leader(self) -> ZooKeeperServer:
        return next(s for s in self.servers if s.mode == "leader")

    def server_of_session(self, session_id: int) -> ZooKeeperServer | None:
        """The server a client session is connected to (its `cons` lists the session's sid)."""
        sid = f"sid={session_id:#x},"
        return next((s for s in self.servers if sid in four_letter_word(s.port, "cons")), None)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def zookeeper_server(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    server = ZooKeeperServer(tmp_path / "zookeeper", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def zookeeper(zookeeper_server: ZooKeeperServer) -> str:
    return zookeeper_server.connect


@dataclass
class Cluster:
    """Hosts of one test's cluster; host i's first node is 1 + 100*i."""

    zookeeper: str
    hosts: list[BrokerProcess]
    client: dict[str, str] = field(default_factory=dict)  # librdkafka settings of a secured cluster's clients

    @property
    def bootstrap(self) -> str:
        return ",".join(h.bootstrap for h in self.hosts if h.running)

    def host_of(self, node_id: int) -> BrokerProcess:
        return self.hosts[node_id // 100]

    def admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, **self.client})

    def log_size(self, node: int, topic: str, partition: int = 0) -> int:
        """Bytes of the .log segments of `node`'s replica of the partition."""
        directory = self.host_of(node).log_dir / f"shard-{node % 100 - 1}" / f"{topic}-{partition}"
        return sum(p.stat().st_size for p in directory.glob("*.log"))

    def partition(self, topic: str, partition: int = 0) -> Any:
        """The partition's metadata (leader, replicas, isrs) as a live host answers it."""
        md = self.admin().list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Polls `check` until it returns something truthy; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
                if last:
                    return last
            except Exception as exc:  # a host going away mid-request: ask again
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"{what} not seen within {timeout} s (last: {last!r})")

    def wait_nodes(self, count: int, timeout: float = 60.0) -> None:
        self.wait_for(f"{count} registered nodes", lambda: len(self.admin().list_topics(timeout=10).brokers) == count,
                      timeout)

    def create_topic(self, topic: str, partitions: int = 1, replication_factor: int = 3, **configs: Any) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.admin()  # kept until the answer: a destroyed handle fails its futures
        futures = admin.create_topics([NewTopic(topic, partitions, replication_factor,
                                                config={k.replace("_", "."): str(v) for k, v in configs.items()})])
        futures[topic].result(30)
        self.wait_for(f"{topic}: every partition led by an in-sync replica", lambda: all(
            p.leader >= 0 and len(p.isrs) == replication_factor
            for p in self.admin().list_topics(topic, timeout=10).topics[topic].partitions.values()))


def assert_not_enough_replicas(bootstrap: str, topic: str) -> None:
    """An acks=all send to `topic` is refused with NOT_ENOUGH_REPLICAS (kafka-python, no retry)."""
    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasError

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0)
    try:
        with pytest.raises(NotEnoughReplicasError):
            producer.send(topic, b"refused").get(timeout=30)
    finally:
        producer.close()


def _host_conf(index: int, zookeeper: str, shards: int, overrides: dict[str, Any]) -> dict[str, str]:
    """Host `index`'s settings; a value may be a callable of the index (per-host settings such
    as broker.rack or the host's own listener ports)."""
    conf = host_overrides(index, 0, zookeeper, Path("unused"), shards)
    for key in ("listeners", "log.dirs"):  # BrokerProcess's own port and directory
        del conf[key]
    conf.update({"zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS), "offsets.topic.num.partitions": "3",
                 "transaction.state.log.num.partitions": "3"})
    # "_" stands for "." in keyword names; a key with dots is Kafka's already (listener.name.sasl_ssl...)
    conf.update({(k if "." in k else k.replace("_", ".")): str(v(index) if callable(v) else v)
                 for k, v in overrides.items()})
    return conf


@pytest.fixture
def cluster_factory(zookeeper: str, broker_factory: BrokerFactory, tmp_path: Path) -> Callable[..., Cluster]:
    """`cluster_factory(hosts=3, shards=1, probe_tls=None, client=None, **overrides)`: hosts joined
    through the test's ZooKeeper, returned once every node is registered.  A host listens where
    its BrokerProcess says unless `listeners` is overridden (a callable of the host index and
    port, e.g. a SASL_SSL listener on it; `probe_tls` then lets the readiness probe speak TLS and
    `client` holds the librdkafka settings the Cluster's admin clients need; `env` is the hosts'
    extra environment, e.g. KRB5_CONFIG; `advertised_host` advertises those listeners under
    that name).  ZooKeeper is set up first, so it is torn down last: the hosts stop while it
    still answers, as an operator stops a cluster."""

    def make(hosts: int = 3, shards: int = 1, probe_tls: ssl.SSLContext | None = None,
             client: dict[str, str] | None = None, log_level: str = "INFO", env: dict[str, str] | None = None,
             advertised_host: str | None = None, **overrides: Any) -> Cluster:
        listeners = overrides.pop("listeners", None)
        if listeners is None:
            started = [broker_factory(overrides=_host_conf(i, zookeeper, shards, overrides), log_level=log_level)
                       for i in range(hosts)]
        else:
            started = []
            for i in range(hosts):
                conf = _host_conf(i, zookeeper, shards, overrides)
                port = free_port(shards)
                conf["listeners"] = listeners(i, port)
                if advertised_host is not None:  # the same listeners under a name (Kerberos needs one)
                    conf["advertised.listeners"] = conf["listeners"].replace("127.0.0.1", advertised_host)
                host = BrokerProcess(tmp_path / f"host-{len(broker_factory.brokers)}", conf, port=port,
                                     shards=int(conf.pop("num.shards")), probe_tls=probe_tls, log_level=log_level,
                                     env=dict(env or {}))
                broker_factory.brokers.append(host)
                started.append(host.start())
        cluster = Cluster(zookeeper, started, client or {})
        cluster.wait_nodes(hosts * shards)
        return cluster

    return make


NETNS_HOSTS = 3


@pytest.fixture
def network() -> Iterator[Network]:
    """A bridge and NETNS_HOSTS network namespaces (tests/cluster/netns.py); skips the test
    where namespaces cannot be made (not root, no iproute2)."""
    reason = namespaces_available()
    if reason is not None:
        pytest.skip(reason)
    net = Network(NETNS_HOSTS)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def netns_cluster_factory(network: Network, tmp_path: Path,
                          broker_factory: BrokerFactory) -> Iterator[Callable[..., Cluster]]:
    """`netns_cluster_factory(**overrides)`: a ZooKeeper on the bridge and one single-shard host
    in each of `network`'s namespaces, listening on its namespace's address.  Teardown heals the
    network, stops the hosts (broker_factory's checks), ZooKeeper, then deletes the namespaces."""
    zk = ZooKeeperServer(tmp_path / "zookeeper", free_port(), network.zookeeper_address)
    zk.start()
    connect = zk.connect

    def make(**overrides: Any) -> Cluster:
        started = []
        for i, ns in enumerate(network.namespaces):
            host = BrokerProcess(tmp_path / f"host-{i}", _host_conf(i, connect, 1, overrides), shards=1,
                                 host=network.address(i), netns=ns)
            broker_factory.brokers.append(host)
            started.append(host.start())
        cluster = Cluster(connect, started)
        cluster.wait_nodes(len(started))
        return cluster

    codes: dict[str, int] = {}
    try:
        yield make
    finally:
        network.heal()
        try:
            codes = {h.bootstrap: h.stop() for h in broker_factory.brokers if h.running}  # before ZooKeeper goes
        finally:
            zk.stop()
    assert all(code == 0 for code in codes.values()), f"exit codes on SIGTERM: {codes}"
