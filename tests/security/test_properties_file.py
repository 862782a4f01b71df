"""A Kafka broker's server.properties, security keys and all, runs pyk unchanged: `pyk serve
<file>` with no --override.  Two listeners under listener.security.protocol.map (EXTERNAL on
SASL_SSL with a PEM keystore and truststore, INTERNAL on SASL_PLAINTEXT, the inter-broker one with
PLAIN), PLAIN users in PlainLoginModule lines continued over several lines with `\\` as Kafka's
documentation writes them, ScramLoginModule lines, super.users, allow.everyone.if.no.acl.found=false
and each of Kafka's two authorizer class names.  confluent-kafka authenticates with PLAIN and
SCRAM (the SCRAM user created by the admin over SASL_SSL), a user is denied until an ACL allows
it, the super user is allowed, wrong passwords are refused.  Then the same broker with no JAAS
key at all: the users come from a JAAS file named by KAFKA_OPTS, its `external.KafkaServer`
section for EXTERNAL and its `KafkaServer` section for INTERNAL (Kafka's precedence).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import OPERATOR_LISTENERS, TEST_ENGINE, TEST_SHARDS, BrokerProcess, free_port, wait_for
from tests.security.conftest import stop_and_check
from tests.security.pki import KEY_PASSWORD, Pki

OK = "OK"
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
AUTHORIZERS = ("org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer")


@dataclass
class PropertiesBroker(BrokerProcess):
    """`pyk serve <server.properties>`: every setting from the file; `port` (the readiness probe's)
    is the SASL_PLAINTEXT listener, which answers ApiVersions before authentication."""

    properties: Path = Path()
    external: int = 0  # the SASL_SSL listener's port

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pyk", "--log-level", self.log_level, "serve", str(self.properties)]


def properties_broker(workdir: Path, pki: Pki, security: str, env: dict[str, str] | None = None) -> PropertiesBroker:
    """A broker whose server.properties is the listeners, TLS and broker keys below plus `security`."""
    port = free_port(2 * TEST_SHARDS)  # one block: shard i of a listener binds its port + i
    internal = port + TEST_SHARDS
    b = PropertiesBroker(workdir, port=internal, log_level="DEBUG", env=env or {},
                         properties=workdir / "server.properties", external=port)
    engine = f"io.engine={TEST_ENGINE}\n" if TEST_ENGINE else ""
    operator = "".join(f"{key}=\n" for key in OPERATOR_LISTENERS)  # fixed default ports would collide
    b.properties.write_text(f"""# pyk-tests: a Kafka broker's server.properties
node.id=1
log.dirs={b.log_dir}
num.shards={TEST_SHARDS}
{engine}{operator}
listeners=EXTERNAL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=EXTERNAL:SASL_SSL,INTERNAL:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512

ssl.keystore.type=PEM
ssl.keystore.location={pki.keystore}
ssl.key.password={KEY_PASSWORD}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca}
ssl.client.auth=none
{security}""")
    return b


def kafka_security(authorizer: str) -> str:
    """The JAAS keys and authorization keys of the file, as Kafka's documentation writes them."""
    return f"""
listener.name.external.plain.sasl.jaas.config={PLAIN} required \\
    username="admin" \\
    password="admin-secret" \\
    user_admin="admin-secret" \\
    user_alice="alice-secret";
listener.name.internal.plain.sasl.jaas.config={PLAIN} required \\
    username="admin" \\
    password="admin-secret" \\
    user_admin="admin-secret" \\
    user_alice="alice-secret";
listener.name.external.scram-sha-256.sasl.jaas.config={SCRAM} required;
listener.name.external.scram-sha-512.sasl.jaas.config={SCRAM} required;
listener.name.internal.scram-sha-512.sasl.jaas.config={SCRAM} required;

authorizer.class.name={authorizer}
super.users=User:admin
allow.everyone.if.no.acl.found=false
"""


def client(broker: PropertiesBroker, pki: Pki, listener: str, mechanism: str, user: str,
           password: str | None = None) -> dict[str, Any]:
    """librdkafka settings of `user` on EXTERNAL (SASL_SSL) or INTERNAL (SASL_PLAINTEXT)."""
    conf: dict[str, Any] = {"sasl.mechanism": mechanism, "sasl.username": user,
                            "sasl.password": password or f"{user}-secret"}
    if listener == "EXTERNAL":
        return {**conf, "bootstrap.servers": f"127.0.0.1:{broker.external}", "security.protocol": "SASL_SSL",
                "ssl.ca.location": pki.ca}
    return {**conf, "bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT"}


def produce(conf: dict[str, Any], topic: str) -> str:
    """OK once one record is delivered, else the name of the first error (authentication, from
    error_cb, or the delivery's)."""
    from confluent_kafka import Producer

    errors: list[str] = []
    delivered: list[bool] = []
    p = Producer({**conf, "message.timeout.ms": 10000, "error_cb": lambda err: errors.append(err.name())})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err.name()) if err else delivered.append(True))
    wait_for(lambda: p.poll(0.2) >= 0 and (errors or delivered), timeout=20, what=f"produce to {topic}")
    p.purge()  # a refused producer stops retrying now, not when the broker is gone
    return errors[0] if errors else OK


def admin(conf: dict[str, Any]) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(conf)


@pytest.fixture(scope="module", params=AUTHORIZERS, ids=["StandardAuthorizer", "AclAuthorizer"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           pki: Pki) -> Iterator[PropertiesBroker]:
    b = properties_broker(tmp_path_factory.mktemp("pyk-properties"), pki, kafka_security(request.param))
    b.start()
    try:
        yield b
    finally:
        stop_and_check(b)


def test_kafka_server_properties_with_acls(broker: PropertiesBroker, pki: Pki, topic: str) -> None:
    from confluent_kafka import admin as kadmin

    root = admin(client(broker, pki, "EXTERNAL", "PLAIN", "admin"))
    root.create_topics([kadmin.NewTopic(topic, 1, 1)], operation_timeout=10)[topic].result(20)
    assert produce(client(broker, pki, "EXTERNAL", "PLAIN", "admin"), topic) == OK  # super.users
    scram = [kadmin.UserScramCredentialUpsertion("bob", kadmin.ScramCredentialInfo(m, 4096), b"bob-secret")
             for m in (kadmin.ScramMechanism.SCRAM_SHA_256, kadmin.ScramMechanism.SCRAM_SHA_512)]
    for future in root.alter_user_scram_credentials(scram).values():
        future.result(15)

    alice = client(broker, pki, "INTERNAL", "PLAIN", "alice")
    bob = client(broker, pki, "EXTERNAL", "SCRAM-SHA-512", "bob")
    assert produce(alice, topic) == "TOPIC_AUTHORIZATION_FAILED"  # authenticated, no ACL: denied
    assert wait_for(lambda: produce(bob, topic), timeout=30, what="bob's SCRAM credential") \
        == "TOPIC_AUTHORIZATION_FAILED"
    assert produce(client(broker, pki, "EXTERNAL", "PLAIN", "alice", "wrong"), topic) == "_AUTHENTICATION"
    assert produce(client(broker, pki, "EXTERNAL", "SCRAM-SHA-256", "bob", "wrong"), topic) == "_AUTHENTICATION"

    acls = [kadmin.AclBinding(kadmin.ResourceType.TOPIC, topic, kadmin.ResourcePatternType.LITERAL, f"User:{user}",
                              "*", kadmin.AclOperation.WRITE, kadmin.AclPermissionType.ALLOW)
            for user in ("alice", "bob")]
    for future in root.create_acls(acls, request_timeout=15).values():
        future.result(20)
    wait_for(lambda: produce(alice, topic) == OK, timeout=30, what="alice allowed by her ACL")
    assert produce(client(broker, pki, "EXTERNAL", "PLAIN", "alice"), topic) == OK
    wait_for(lambda: produce(bob, topic) == OK, timeout=30, what="bob allowed by his ACL")
    assert produce(client(broker, pki, "EXTERNAL", "SCRAM-SHA-256", "bob"), topic) == OK
    log = broker.log_text()
    assert "User:alice" in log and "authentication failed" in log  # the audit lines of denials and failures


JAAS_FILE = f"""/* pyk-tests: a Kafka broker's JAAS file */
KafkaServer {{
    {PLAIN} required
    username="admin"
    password="admin-secret"
    user_admin="admin-secret"
    user_alice="alice-secret";
    {SCRAM} required;  // the SCRAM users live in the cluster metadata
}};

external.KafkaServer {{
    {PLAIN} required
    user_admin="admin-secret"
    user_carol='carol-secret';
}};
"""


def test_users_from_a_jaas_file(tmp_path: Path, pki: Pki, topic: str) -> None:
    """No sasl.jaas.config key: EXTERNAL takes `external.KafkaServer`, INTERNAL (also the
    inter-broker login's, username/password) the `KafkaServer` section."""
    from confluent_kafka.admin import NewTopic

    jaas = tmp_path / "kafka_server_jaas.conf"
    jaas.write_text(JAAS_FILE)
    b = properties_broker(tmp_path / "broker", pki, "",
                          env={"KAFKA_OPTS": f"-Xmx1G -Djava.security.auth.login.config={jaas}"})
    b.start()
    try:
        root = admin(client(b, pki, "EXTERNAL", "PLAIN", "admin"))  # alive until the answer
        root.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10)[topic].result(20)
        assert produce(client(b, pki, "EXTERNAL", "PLAIN", "carol"), topic) == OK
        assert produce(client(b, pki, "INTERNAL", "PLAIN", "alice"), topic) == OK
        assert produce(client(b, pki, "EXTERNAL", "PLAIN", "alice"), topic) == "_AUTHENTICATION"
        assert produce(client(b, pki, "INTERNAL", "PLAIN", "carol"), topic) == "_AUTHENTICATION"
    finally:
        stop_and_check(b)
