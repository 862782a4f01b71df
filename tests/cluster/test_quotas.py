"""Client quotas in a ZooKeeper cluster: AlterClientQuotas on one host writes Kafka 2.x's
/config/clients/<c> (and /config/users/<u>/clients/<c>) with a /config/changes notification;
every host applies it (DescribeClientQuotas of another host answers it, a producer on a
partition led by another host is throttled)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.clients.test_quotas import Load, kafka_configs, produce_for
from tests.cluster.conftest import Cluster


def test_quotas_reach_every_host_through_zookeeper(cluster_factory: Callable[..., Cluster], topic: str) -> None:
    from kazoo.client import KazooClient

    cluster = cluster_factory(hosts=2)
    cluster.create_topic(topic, replication_factor=2)
    leader = cluster.partition(topic).leader
    other = cluster.hosts[1 - leader // 100]  # the host that does not lead the partition
    kafka_configs(other.bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "slow",
                  "--add-config", "producer_byte_rate=65536")
    kafka_configs(other.bootstrap, "--alter", "--entity-type", "users", "--entity-name", "alice",
                  "--entity-type", "clients", "--entity-default", "--add-config", "request_percentage=20")
    zk = KazooClient(hosts=cluster.zookeeper)
    zk.start(timeout=15)
    try:
        assert json.loads(zk.get("/config/clients/slow")[0]) == {"version": 1, "config": {"producer_byte_rate": "65536"}}
        assert json.loads(zk.get("/config/users/alice/clients/<default>")[0])["config"] == {"request_percentage": "20"}
        changes = [json.loads(zk.get(f"/config/changes/{c}")[0]) for c in sorted(zk.get_children("/config/changes"))]
        assert {"version": 2, "entity_path": "clients/slow"} in changes
        assert {"version": 2, "entity_path": "users/alice/clients/<default>"} in changes
    finally:
        zk.stop()
        zk.close()
    leading = cluster.host_of(leader)
    cluster.wait_for("the quota described by the leader's host", lambda: "producer_byte_rate=65536.0" in kafka_configs(
        leading.bootstrap, "--describe", "--entity-type", "clients", "--entity-name", "slow"))
    slow = Load("slow")
    produce_for(cluster.bootstrap, topic, slow, 6.0)
    assert slow.throttles and not slow.errors
