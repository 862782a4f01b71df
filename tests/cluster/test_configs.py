"""Dynamic config changes in a cluster: a topic config altered through one host (confluent-kafka's
AdminClient) is written to `/config/topics/<t>` with a Kafka 2.x change notification
(`/config/changes/config_change_<seq>`), and every host applies it at once: DescribeConfigs
asked of each host itself (pyk's client, one connection per host) answers it, and the leader
enforces it (min.insync.replicas above the ISR: NOT_ENOUGH_REPLICAS)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from pyk.client import Connection
from pyk.protocol import ApiKey
from tests.cluster.conftest import Cluster, assert_not_enough_replicas
from tests.helpers import BrokerProcess

TOPIC_RESOURCE = 2


def _described(host: BrokerProcess, topic: str, key: str) -> str | None:
    """The value of a topic config as `host` itself answers DescribeConfigs."""
    async def ask() -> str | None:
        address, _, port = host.bootstrap.rpartition(":")
        conn = await Connection.open(address, int(port))
        try:
            answer = await conn.request(ApiKey.DESCRIBE_CONFIGS, 1, {"resources": [
                {"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configuration_keys": [key]}]})
        finally:
            conn.close()
        configs = answer["results"][0]["configs"]
        return str(configs[0]["value"]) if configs else None

    return asyncio.run(ask())


def test_a_topic_config_altered_on_one_host_applies_on_every_host(cluster_factory: Callable[..., Cluster],
                                                                   topic: str) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )
    from kazoo.client import KazooClient

    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic)
    leader_host = cluster.host_of(cluster.partition(topic).leader)
    writer = next(h for h in cluster.hosts if h is not leader_host)
    admin = AdminClient({"bootstrap.servers": writer.bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("min.insync.replicas", "4", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(30)

    for host in cluster.hosts:
        cluster.wait_for(f"{host.bootstrap} answering the new configs", lambda h=host: (
            _described(h, topic, "min.insync.replicas"), _described(h, topic, "retention.ms")) == ("4", "7200000"))
    # The leader enforces it: 4 in-sync replicas needed, 3 exist.
    assert_not_enough_replicas(cluster.bootstrap, topic)
    # The change is announced the way Kafka 2.x announces it.
    zk = KazooClient(hosts=cluster.zookeeper)
    zk.start(30)
    try:
        notes = [json.loads(zk.get(f"/config/changes/{c}")[0]) for c in sorted(zk.get_children("/config/changes"))]
    finally:
        zk.stop()
        zk.close()
    assert {"version": 2, "entity_path": f"topics/{topic}"} in notes
