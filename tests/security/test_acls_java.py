"""Kafka's own `kafka-acls` (org.apache.kafka.tools.AclCommand from the 4.1 jars) against pyk's
authorizer over SASL/PLAIN: --add, --list and --remove of literal and prefixed ACLs, each
enforced (or lifted) on the next request of a real client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kafka import run_java
from tests.security.conftest import SecureBroker, stop_and_check
from tests.security.pki import Pki
from tests.security.test_acls import OK, acl_broker, create, produce

ACL_COMMAND = "org.apache.kafka.tools.AclCommand"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    b = acl_broker(tmp_path_factory.mktemp("pyk-acl-java"), pki)
    b.start()
    try:
        yield b
    finally:
        stop_and_check(b)


@pytest.fixture(scope="module")
def admin_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("acl-command") / "admin.properties"
    path.write_text('security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n'
                    'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required '
                    'username="admin" password="admin-secret";\n')
    return path


def kafka_acls(broker: SecureBroker, config: Path, *args: str) -> str:
    done = run_java(ACL_COMMAND, "--bootstrap-server", broker.bootstrap_of("SASL_PLAINTEXT"),
                    "--command-config", str(config), *args)
    return done.stdout


def test_add_list_remove_literal(broker: SecureBroker, admin_config: Path) -> None:
    assert create(broker, "admin", "audit-log") == OK
    assert produce(broker, "carol", "audit-log") == "TOPIC_AUTHORIZATION_FAILED"
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:carol", "--operation", "Write",
               "--operation", "Describe", "--topic", "audit-log")
    assert produce(broker, "carol", "audit-log") == OK
    listed = kafka_acls(broker, admin_config, "--list", "--topic", "audit-log")
    assert "ResourcePattern(resourceType=TOPIC, name=audit-log, patternType=LITERAL)" in listed
    assert "(principal=User:carol, host=*, operation=WRITE, permissionType=ALLOW)" in listed
    assert "(principal=User:carol, host=*, operation=DESCRIBE, permissionType=ALLOW)" in listed
    kafka_acls(broker, admin_config, "--remove", "--force", "--allow-principal", "User:carol", "--operation",
               "Write", "--topic", "audit-log")
    assert produce(broker, "carol", "audit-log") == "TOPIC_AUTHORIZATION_FAILED"
    listed = kafka_acls(broker, admin_config, "--list", "--topic", "audit-log")
    assert "operation=WRITE" not in listed and "operation=DESCRIBE" in listed


def test_prefixed_and_deny(broker: SecureBroker, admin_config: Path) -> None:
    for topic in ("metrics-cpu", "metrics-disk"):
        assert create(broker, "admin", topic) == OK
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:dave", "--operation", "All",
               "--topic", "metrics-", "--resource-pattern-type", "prefixed")
    kafka_acls(broker, admin_config, "--add", "--deny-principal", "User:dave", "--operation", "Write",
               "--topic", "metrics-disk")
    assert produce(broker, "dave", "metrics-cpu") == OK
    assert produce(broker, "dave", "metrics-disk") == "TOPIC_AUTHORIZATION_FAILED"  # DENY beats the prefix
    listed = kafka_acls(broker, admin_config, "--list", "--topic", "metrics-disk", "--resource-pattern-type", "match")
    assert "ResourcePattern(resourceType=TOPIC, name=metrics-, patternType=PREFIXED)" in listed
    assert "(principal=User:dave, host=*, operation=WRITE, permissionType=DENY)" in listed


def test_cluster_and_group_acls(broker: SecureBroker, admin_config: Path) -> None:
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:bob", "--operation", "Create", "--cluster")
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:bob", "--operation", "Describe",
               "--group", "readers", "--transactional-id", "tx-1")
    assert create(broker, "bob", "bob-made-this") == OK  # CREATE on the cluster covers every topic
    listed = kafka_acls(broker, admin_config, "--list", "--principal", "User:bob")
    for pattern in ("resourceType=CLUSTER, name=kafka-cluster", "resourceType=GROUP, name=readers",
                    "resourceType=TRANSACTIONAL_ID, name=tx-1"):
        assert f"ResourcePattern({pattern}, patternType=LITERAL)" in listed


def test_without_permission_the_tool_fails(broker: SecureBroker, tmp_path: Path) -> None:
    config = tmp_path / "alice.properties"
    config.write_text('security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n'
                      'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required '
                      'username="alice" password="alice-secret";\n')
    done = run_java(ACL_COMMAND, "--bootstrap-server", broker.bootstrap_of("SASL_PLAINTEXT"), "--command-config",
                    str(config), "--add", "--allow-principal", "User:alice", "--operation", "All", "--topic", "*",
                    check=False)
    assert "ClusterAuthorizationException" in done.stdout + done.stderr


def _verifiable_producer(broker: SecureBroker, config: Path, user: str, topic: str) -> list[dict[str, Any]]:
    """Kafka's VerifiableProducer (the Java producer; idempotent, which its retries=0 default would
    turn off) sending 5 records as `user`; its JSON events."""
    config.write_text('security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n'
                      'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required '
                      f'username="{user}" password="{user}-secret";\nmax.block.ms=15000\ndelivery.timeout.ms=15000\n'
                      'request.timeout.ms=10000\nenable.idempotence=true\nretries=3\n')
    done = run_java("org.apache.kafka.tools.VerifiableProducer", "--bootstrap-server",
                    broker.bootstrap_of("SASL_PLAINTEXT"), "--topic", topic, "--max-messages", "5",
                    "--producer.config", str(config), check=False, timeout=90)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_java_idempotent_producer(broker: SecureBroker, admin_config: Path, tmp_path: Path) -> None:
    """The Java producer's InitProducerId needs IDEMPOTENT_WRITE on the cluster or WRITE on some
    topic (KIP-679): carol, allowed to write one topic, produces; alice, allowed only to describe it,
    is refused with CLUSTER_AUTHORIZATION_FAILED."""
    assert create(broker, "admin", "java-orders") == OK
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:carol", "--operation", "Write",
               "--topic", "java-orders")
    events = _verifiable_producer(broker, tmp_path / "carol.properties", "carol", "java-orders")
    assert [e["name"] for e in events if e["name"].startswith("producer_send")] == ["producer_send_success"] * 5
    kafka_acls(broker, admin_config, "--add", "--allow-principal", "User:alice", "--operation", "Describe",
               "--topic", "java-orders")  # alice sees the topic, so her producer gets to InitProducerId
    events = _verifiable_producer(broker, tmp_path / "alice.properties", "alice", "java-orders")
    sends = [e for e in events if e["name"].startswith("producer_send")]
    assert sends and all(e["name"] == "producer_send_error" for e in sends), events
    # The refusal is fatal to the producer: records sent before it arrived fail with it, and records
    # sent after it (on a loaded machine, some) fail in send() with the client's own "error state".
    assert any("ClusterAuthorizationException" in e["exception"] for e in sends), events
    assert all("ClusterAuthorizationException" in e["exception"] or "in an error state" in e["message"]
               for e in sends), events
