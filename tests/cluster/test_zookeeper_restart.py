"""ZooKeeper restarted under load: while it is down the hosts keep serving what they lead
(acks=all writes keep completing with an unchanged ISR); when it is back they reconnect, a
controller is there (re-elected if its session went), metadata changes work again, and every
acknowledged value is readable."""

from __future__ import annotations

from collections.abc import Callable

from tests.cluster.conftest import Cluster, ZooKeeperServer
from tests.cluster.test_rolling_restart import PARTITIONS, _Producer
from tests.helpers import confluent_read_to_end


def _created(cluster: Cluster, topic: str) -> bool:
    from confluent_kafka import KafkaError, KafkaException

    try:
        cluster.create_topic(topic)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.NOT_CONTROLLER:
            raise
        return False
    return True


def test_hosts_keep_serving_across_a_zookeeper_restart(cluster_factory: Callable[..., Cluster],
                                                       zookeeper_server: ZooKeeperServer, topic: str) -> None:
    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, partitions=PARTITIONS, min_insync_replicas=2)
    producer = _Producer(cluster.bootstrap, topic)
    producer.start()
    cluster.wait_for("the stream flowing", lambda: len(producer.acked) >= 200, 60)

    zookeeper_server.kill9()
    cluster.wait_for("every host noticing ZooKeeper gone",
                     lambda: all("Connection dropped" in h.log_text() for h in cluster.hosts), 30)
    before = len(producer.acked)
    cluster.wait_for("acks=all writes completing without ZooKeeper", lambda: len(producer.acked) >= before + 200, 60)

    zookeeper_server.start()
    admin = cluster.admin()  # kept: a destroyed handle fails its futures
    cluster.wait_for("a controller after the restart",
                     lambda: admin.describe_cluster().result(10).controller is not None, 60)
    # A metadata change through ZooKeeper again.  A host whose session expired while ZooKeeper
    # was down learns it only on reconnecting, and answers NOT_CONTROLLER (retriable, as in
    # Kafka) until it has registered again: a client retries.
    cluster.wait_for("a topic created after the restart", lambda: _created(cluster, f"{topic}-after"), 60)
    before = len(producer.acked)
    cluster.wait_for("writes completing after the restart", lambda: len(producer.acked) >= before + 200, 60)
    producer.done.set()
    producer.join(150)
    assert not producer.is_alive(), "the producer did not finish"
    assert not producer.errors, f"{len(producer.errors)} deliveries failed, first {producer.errors[0]}"
    read = {r.value for p in range(PARTITIONS) for r in confluent_read_to_end(cluster.bootstrap, topic, p, timeout=60)}
    missing = producer.acked - read
    assert not missing, f"{len(missing)} acknowledged values lost"
