"""A secured cluster as a Kafka user runs one: clients on a SASL_SSL listener, the brokers among
themselves on a separate SASL_PLAINTEXT listener (`inter.broker.listener.name`), the ACL
authorizer with allow.everyone.if.no.acl.found=false, and the brokers' own principal in
super.users (replica fetches need CLUSTER_ACTION on the cluster, as in Kafka).

Replication is shown by every replica joining the ISR of an RF=3, min.insync.replicas=2 topic
and by an acks=all stream that survives a kill -9 of its leader; authorization by a user with
topic ACLs producing and consuming while a user without any is refused; the listener split by
the hosts' registrations in ZooKeeper, which name both listeners and the inter-broker one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_failover import ELECTION_DEADLINE_S, _check_history, _kill_leader, _Stream
from tests.helpers import free_port
from tests.security.pki import KEY_PASSWORD, Pki
from tests.security.test_acls import binding

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" '
        'password="broker-secret" user_broker="broker-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def _client(pki: Pki, user: str) -> dict[str, str]:
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": f"{user}-secret", "ssl.ca.location": pki.ca}


def _secured_cluster(cluster_factory: Callable[..., Cluster], pki: Pki) -> Cluster:
    import ssl

    probe = ssl.create_default_context(cafile=pki.ca)
    return cluster_factory(
        hosts=3,
        listeners=lambda index, port: f"CLIENT://127.0.0.1:{port},INTERNAL://127.0.0.1:{free_port()}",
        probe_tls=probe,
        client=_client(pki, "admin"),
        **{"listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SASL_PLAINTEXT",
           "inter.broker.listener.name": "INTERNAL",
           "sasl.enabled.mechanisms": "PLAIN",
           "sasl.mechanism.inter.broker.protocol": "PLAIN",
           "listener.name.client.plain.sasl.jaas.config": JAAS,
           "listener.name.internal.plain.sasl.jaas.config": JAAS,
           "ssl.keystore.location": pki.keystore,
           "ssl.key.password": KEY_PASSWORD,
           "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
           "allow.everyone.if.no.acl.found": "false",
           "super.users": "User:broker;User:admin"})


def _produce(cluster: Cluster, pki: Pki, user: str, topic: str) -> str:
    from confluent_kafka import Producer

    errors: list[str] = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 15000,
                         **_client(pki, user)})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err.name()) if err else None)
    assert producer.flush(30) == 0
    return errors[0] if errors else "OK"


def test_clients_and_brokers_on_separate_secured_listeners_with_acls(cluster_factory: Callable[..., Cluster],
                                                                      pki: Pki, topic: str) -> None:
    from kazoo.client import KazooClient

    cluster = _secured_cluster(cluster_factory, pki)
    probe = f"{topic}-probe"
    cluster.create_topic(topic, min_insync_replicas=2)  # the ISR of 3 is the brokers' fetches, authorized
    cluster.create_topic(probe)

    zk = KazooClient(hosts=cluster.zookeeper)
    zk.start(timeout=10)
    try:
        registration: dict[str, Any] = json.loads(zk.get("/brokers/ids/1")[0])
    finally:
        zk.stop()
    assert set(registration["listener_security_protocol_map"]) == {"CLIENT", "INTERNAL"}
    assert [e.split(":")[0] for e in registration["endpoints"]] == ["CLIENT", "INTERNAL"]

    assert _produce(cluster, pki, "alice", probe) == "TOPIC_AUTHORIZATION_FAILED"
    admin = cluster.admin()
    grants = [binding("User:alice", op, "TOPIC", topic, "PREFIXED") for op in ("WRITE", "READ", "DESCRIBE")]
    grants += [binding("User:alice", "IDEMPOTENT_WRITE", "BROKER", "kafka-cluster"),
               binding("User:alice", "READ", "GROUP", "*")]
    for future in admin.create_acls(grants, request_timeout=15).values():
        future.result(20)
    cluster.wait_for("alice's grant on every host", lambda: _produce(cluster, pki, "alice", probe) == "OK", 60)
    assert _produce(cluster, pki, "bob", probe) == "TOPIC_AUTHORIZATION_FAILED"

    stream = _Stream(cluster.bootstrap, topic, total=2000, conf=_client(pki, "alice"))
    cluster.wait_for("a third of the stream acknowledged", lambda: len(stream.acked) >= 600, 60)
    assert _kill_leader(cluster, topic) < ELECTION_DEADLINE_S
    stream.join()
    cluster.client = _client(pki, "alice")  # the history is read back as alice (READ on the topic)
    _check_history(cluster, topic, stream)
