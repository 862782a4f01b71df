"""SASL/GSSAPI against an MIT Kerberos KDC started by the test (Debian's krb5-kdc): kafka-python
(python-gssapi) authenticates with a ticket for kafka/localhost and produces; a client without a
ticket cannot; a ticket for another service is refused by the broker itself.  Each with the
broker's keytab in a sasl.jaas.config key and again in a JAAS file.  confluent-kafka's wheels are
built without GSSAPI, so kafka-python is the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import create_topic, kafka_python_produce, make_records, wait_for
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.kdc import REALM, SERVICE, Kdc
from tests.security.pki import Pki
from tests.security.wire import Wire

SASL_AUTHENTICATION_FAILED = 58

pytestmark = pytest.mark.skipif(not Kdc.available(), reason="MIT Kerberos KDC (krb5-kdc) not installed")


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    k = Kdc.start(tmp_path_factory.mktemp("kdc"))
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture(scope="module", params=["key", "jaas-file"])
def kerberized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Pki,
               kdc: Kdc) -> Iterator[SecureBroker]:
    """The broker's keytab and principal in the listener's sasl.jaas.config key, or (as Kafka's
    Kerberos documentation has it) in the KafkaServer section of a JAAS file named by KAFKA_OPTS."""
    entry = (f'com.sun.security.auth.module.Krb5LoginModule required\n    useKeyTab=true\n    storeKey=true\n'
             f'    keyTab="{kdc.keytab("broker")}"\n    principal="{SERVICE}/localhost@{REALM}";')
    workdir = tmp_path_factory.mktemp("pyk-kerberos")
    overrides = {"listener.name.sasl_plaintext.sasl.enabled.mechanisms": "GSSAPI,PLAIN",
                 "sasl.kerberos.service.name": SERVICE}
    if request.param == "key":
        overrides["listener.name.sasl_plaintext.gssapi.sasl.jaas.config"] = entry
    b = secure_broker(workdir, pki, log_level="DEBUG", **overrides)
    b.env.update(kdc.env)
    if request.param == "jaas-file":
        (workdir / "kafka_server_jaas.conf").write_text(f"KafkaServer {{\n    {entry}\n}};\n")
        b.env["KAFKA_OPTS"] = f"-Djava.security.auth.login.config={workdir}/kafka_server_jaas.conf"
    b.start()
    try:
        yield b
    finally:
        stop_and_check(b)


def test_kerberos_ticket_authenticates(kerberized: SecureBroker, kdc: Kdc, topic: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in kdc.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{kdc.root}/alice.ccache")
    kdc.kinit(f"alice@{REALM}", kdc.keytab("alice"))
    create_topic(kerberized.bootstrap, topic)
    kafka_python_produce(kerberized.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(3),
                         security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI",
                         sasl_kerberos_service_name=SERVICE, sasl_kerberos_domain_name="localhost")
    wait_for(lambda: "principal User:alice" in kerberized.log_text() or "as User:alice" in kerberized.log_text(),
             what="the Kerberos principal")


def test_no_ticket_no_service(kerberized: SecureBroker, kdc: Kdc, topic: str, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:
    for key, value in kdc.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/empty.ccache")  # no kinit: no ticket
    with pytest.raises(Exception):  # noqa: B017 - the client fails before a request: any of its errors
        kafka_python_produce(kerberized.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(1),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI",
                             sasl_kerberos_service_name=SERVICE, sasl_kerberos_domain_name="localhost",
                             max_block_ms=5000, request_timeout_ms=5000)


def test_ticket_for_another_service_is_refused(kerberized: SecureBroker, kdc: Kdc, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """The client side completes (alice's valid ticket, from the KDC, for other/localhost); the
    broker's acceptor, holding only kafka/localhost's key, refuses the token:
    SASL_AUTHENTICATION_FAILED with the GSS-API reason, the connection closed, one audit line."""
    import gssapi

    for key, value in kdc.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/alice.ccache")
    kdc.kinit(f"alice@{REALM}", kdc.keytab("alice"))
    target = gssapi.Name("other@localhost", gssapi.NameType.hostbased_service)
    token = gssapi.SecurityContext(name=target, usage="initiate").step()
    with Wire(kerberized.bootstrap_of("SASL_PLAINTEXT")) as wire:
        answer = wire.authenticate("GSSAPI", token)
        assert answer["error_code"] == SASL_AUTHENTICATION_FAILED, answer
        assert answer["error_message"].startswith("GSSAPI: "), answer
        assert wire.closed_by_broker()
    wait_for(lambda: "authentication failed: listener=SASL_PLAINTEXT" in kerberized.log_text()
             and "mechanism=GSSAPI user=None: GSSAPI: " in kerberized.log_text(), what="the audit line")
