"""The web console on a broker whose only listener is SASL_SSL (ssl.client.auth=required) with an
ACL authorizer that denies whatever no ACL allows: the console connects on the inter-broker
listener as the broker (the PLAIN user `broker` of the JAAS line, the broker keystore as its
client certificate), a super user, while alice, an ordinary user with ACLs on her topic and
group, writes and reads through confluent-kafka.  Each page is fetched over HTTP and checked
for what alice wrote: the topics list, the topic's partitions and offsets, the message browser
(librdkafka with the broker's settings), the group list and the group's committed offsets.
Sessions last connections.max.reauth.ms=2000: once the console's have passed that, the pages
come back again (pyk's client replaces a connection due for re-authentication before the broker
would close it; librdkafka re-authenticates by itself) and the broker closed no expired session.
"""

from __future__ import annotations

import html
import re
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from pyk.client import BrokerError
from pyk.console.kafka import browse
from tests.helpers import TEST_SHARDS, BrokerProcess, free_port
from tests.security.conftest import stop_and_check
from tests.security.pki import KEY_PASSWORD, Pki

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" '
        'password="broker-secret" user_broker="broker-secret" user_alice="alice-secret";')
TOPIC, GROUP = "orders", "billing"
HIDDEN = "payroll"  # a topic alice has no ACL for
RECORDS = 30
SESSION_MS = 2000  # connections.max.reauth.ms


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def alice(pki: Pki) -> dict[str, str]:
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "alice",
            "sasl.password": "alice-secret", "ssl.ca.location": pki.ca, "ssl.certificate.location": pki.client_cert,
            "ssl.key.location": pki.client_key}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[tuple[BrokerProcess, str]]:
    """(broker, console URL): SASL_SSL only, ACLs enforced, super.users=User:broker."""
    port, console = free_port(TEST_SHARDS), free_port()
    probe = ssl.create_default_context(cafile=pki.ca)
    probe.load_cert_chain(pki.client_key)
    b = BrokerProcess(Path(tmp_path_factory.mktemp("pyk-console-secured")), {
        "listeners": f"SASL_SSL://127.0.0.1:{port}",
        "security.inter.broker.protocol": "SASL_SSL",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "ssl.keystore.location": pki.keystore,
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.location": pki.ca,
        "ssl.client.auth": "required",
        "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:broker",
        "console.listener": f"127.0.0.1:{console}",
        "connections.max.reauth.ms": str(SESSION_MS),
    }, port=port, probe_tls=probe, log_level="DEBUG")
    b.start()
    try:
        yield b, f"http://127.0.0.1:{console}"
    finally:
        stop_and_check(b)


def grant_alice(broker: BrokerProcess, pki: Pki) -> None:
    """As the broker user: creates the topics and lets alice write, read and describe hers and use her group."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap, **alice(pki), "sasl.username": "broker",
                         "sasl.password": "broker-secret"})
    for future in admin.create_topics([NewTopic(TOPIC, 2, 1), NewTopic(HIDDEN, 1, 1)]).values():
        future.result(30)
    acls = [AclBinding(kind, name, ResourcePatternType.LITERAL, "User:alice", "*", op, AclPermissionType.ALLOW)
            for kind, name, ops in ((ResourceType.TOPIC, TOPIC, (AclOperation.WRITE, AclOperation.READ,
                                                                 AclOperation.DESCRIBE)),
                                    (ResourceType.GROUP, GROUP, (AclOperation.READ,)))
            for op in ops]
    for future in admin.create_acls(acls).values():
        future.result(30)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        page: str = response.read().decode()
    assert "Cannot show this page" not in page, page
    return page


def rows(page: str) -> list[list[str]]:
    """The text of the cells of each table row of a page (tags inside a cell dropped)."""
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)]


def test_console_pages_on_a_sasl_ssl_broker_with_acls(secured: tuple[BrokerProcess, str], pki: Pki) -> None:
    broker, url = secured
    grant_alice(broker, pki)
    producer = Producer({"bootstrap.servers": broker.bootstrap, **alice(pki), "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(TOPIC, key=f"order-{i}".encode(), value=f'{{"amount": {i}}}'.encode(), partition=i % 2)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, **alice(pki), "group.id": GROUP,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPIC])
    seen, deadline = 0, time.monotonic() + 60
    while seen < RECORDS and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen += 1
    assert seen == RECORDS
    consumer.commit(asynchronous=False)
    consumer.close()

    from confluent_kafka.admin import AdminClient

    assert set(AdminClient({"bootstrap.servers": broker.bootstrap, **alice(pki)}).list_topics(timeout=30).topics) == {
        TOPIC}  # the authorizer hides what alice may not describe
    check_pages(url)
    time.sleep(SESSION_MS / 1000 * 1.5)  # every session the console opened is past its lifetime
    check_pages(url)
    log = broker.log_text()
    assert "authorization denied: principal=User:broker" not in log
    assert "SASL session expired" not in log


def check_pages(url: str) -> None:
    """The topics list, the topic's partitions, the browsed messages, the groups and the group
    show what alice wrote and committed."""
    listed = {r[0] for r in rows(get(url + "/topics")) if r}
    assert {TOPIC, HIDDEN} <= listed, listed
    partitions = [r for r in rows(get(f"{url}/topics/{TOPIC}")) if len(r) == 7]  # the partitions table
    assert [(int(r[0]), int(r[3]), int(r[4])) for r in partitions] == [(0, 0, RECORDS // 2), (1, 0, RECORDS // 2)]

    browsed = rows(get(f"{url}/topics/{TOPIC}/messages?partition=1"))
    keys = [r[2] for r in browsed if len(r) == 5]
    assert keys == [f"order-{i}" for i in range(1, RECORDS, 2)]
    assert any('"amount": 29' in r[3] for r in browsed if len(r) == 5)

    assert any(r and r[0] == GROUP for r in rows(get(url + "/groups")))
    offsets = [r for r in rows(get(f"{url}/groups/{GROUP}")) if len(r) == 6]  # topic, partition, committed, end, lag
    assert [(r[0], int(r[1]), int(r[2]), int(r[4])) for r in offsets] == [(TOPIC, 0, RECORDS // 2, 0),
                                                                          (TOPIC, 1, RECORDS // 2, 0)]


def test_browser_on_gssapi_says_librdkafka_cannot() -> None:
    """confluent-kafka's librdkafka has no GSSAPI: the message browser answers with librdkafka's
    reason (shown in the page), not a server error."""
    settings = {"bootstrap.servers": "127.0.0.1:9", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI"}
    with pytest.raises(BrokerError, match="No provider for SASL mechanism GSSAPI"):
        browse(settings, TOPIC, 0, None, None, 10)
