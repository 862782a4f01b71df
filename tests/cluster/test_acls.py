"""ACLs in a ZooKeeper cluster: created through one host, stored in Kafka 2.x's layout
(/kafka-acl, /kafka-acl-extended/prefixed, change notifications), enforced by another host.

The cluster's clients (and its hosts' replica fetchers) are PLAINTEXT, so every principal is
User:ANONYMOUS; allow.everyone.if.no.acl.found=true keeps what no ACL names open (replication
needs CLUSTER_ACTION), and an ACL naming a topic closes it to everyone it does not allow."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import Cluster
from tests.security.test_acls import binding

AUTHORIZER = {"authorizer_class_name": "kafka.security.authorizer.AclAuthorizer",
              "allow_everyone_if_no_acl_found": "true"}


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _produce(bootstrap: str, topic: str) -> str:
    from confluent_kafka import Producer

    errors: list[str] = []
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err.name()) if err else None)
    assert p.flush(15) == 0
    return errors[0] if errors else "OK"


def test_acl_created_on_one_host_is_enforced_on_another(cluster_factory: Callable[..., Cluster],
                                                        topic: str) -> None:
    from confluent_kafka.admin import NewTopic
    from kazoo.client import KazooClient

    cluster = cluster_factory(hosts=2, **AUTHORIZER)
    first, second = (h.bootstrap for h in cluster.hosts)
    admin = _admin(first)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1, replica_assignment=[[101]])])[topic].result(30)  # led by host 1
    assert _produce(second, topic) == "OK"
    for future in admin.create_acls([binding("User:someone", "READ", "TOPIC", topic)]).values():
        future.result(30)  # through host 0: the topic now has an ACL, which does not allow ANONYMOUS
    cluster.wait_for("host 1 refusing the write", lambda: _produce(second, topic) == "TOPIC_AUTHORIZATION_FAILED")
    other = _admin(second)  # granted through host 1, enforced wherever the request lands
    for future in other.create_acls([binding("User:ANONYMOUS", "WRITE", "TOPIC", topic[:5], "PREFIXED")]).values():
        future.result(30)
    cluster.wait_for("the prefixed grant", lambda: _produce(first, topic) == "OK")

    zk = KazooClient(hosts=cluster.zookeeper)
    zk.start(timeout=10)
    try:
        literal = json.loads(zk.get(f"/kafka-acl/Topic/{topic}")[0])
        assert literal == {"version": 1, "acls": [{"principal": "User:someone", "permissionType": "Allow",
                                                   "operation": "Read", "host": "*"}]}
        prefixed = json.loads(zk.get(f"/kafka-acl-extended/prefixed/Topic/{topic[:5]}")[0])
        assert prefixed["acls"] == [{"principal": "User:ANONYMOUS", "permissionType": "Allow", "operation": "Write",
                                     "host": "*"}]
        changes = zk.get_children("/kafka-acl-changes")
        assert [zk.get(f"/kafka-acl-changes/{c}")[0] for c in changes] == [f"Topic:{topic}".encode()]
        extended = [json.loads(zk.get(f"/kafka-acl-extended-changes/{c}")[0])
                    for c in zk.get_children("/kafka-acl-extended-changes")]
        assert extended == [{"version": 1, "resourceType": "Topic", "name": topic[:5], "patternType": "Prefixed"}]
    finally:
        zk.stop()
        zk.close()
    # The literal READ ACL still names the topic: deleting the grant through host 1 closes it again.
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    gone = AclBindingFilter(ResourceType.TOPIC, topic[:5], ResourcePatternType.PREFIXED, None, None,
                            AclOperation.ANY, AclPermissionType.ANY)
    assert len(other.delete_acls([gone])[gone].result(30)) == 1
    cluster.wait_for("host 1 refusing the write again", lambda: _produce(first, topic) == "TOPIC_AUTHORIZATION_FAILED")
