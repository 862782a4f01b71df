"""TLS listeners (SSL) against real clients: with the CA a client works, without it the handshake
fails; a plaintext client on a TLS port is turned away and the broker keeps serving; a client
certificate becomes the principal (User:<RFC 2253 subject>) and ssl.client.auth=required refuses
clients without one."""

from __future__ import annotations

import ssl
from typing import Any

from tests.helpers import (
    ClientError,
    aiokafka_consume,
    aiokafka_produce,
    api_versions_probe,
    confluent_consume,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    kafka_python_produce,
    make_records,
    wait_for,
)
from tests.security.conftest import SecureBroker
from tests.security.pki import Pki
from tests.security.wire import Wire


def _ssl(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {"security.protocol": "SSL", "ssl.ca.location": pki.ca, **extra}


def _admin_errors(bootstrap: str, conf: dict[str, Any]) -> list[Any]:
    """The error_cb events of a confluent admin client that tried to reach the broker."""
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    admin = AdminClient({"bootstrap.servers": bootstrap, **conf, "error_cb": errors.append})
    try:
        admin.list_topics(timeout=5)
    except Exception as exc:
        errors.append(exc)
    return errors


def test_ssl_round_trip_with_every_client(broker: SecureBroker, pki: Pki, topic: str) -> None:
    create_topic(broker.bootstrap, topic, partitions=2)
    ssl_bootstrap = broker.bootstrap_of("SSL")
    records = make_records(50, partition=0)
    confluent_produce(ssl_bootstrap, topic, records, **_ssl(pki))
    got = confluent_consume(ssl_bootstrap, topic, partition=0, count=50, **_ssl(pki))
    assert [r.value for r in got] == [r.value for r in records]
    context = ssl.create_default_context(cafile=pki.ca)
    kafka_python_produce(ssl_bootstrap, topic, make_records(10, partition=1), security_protocol="SSL",
                         ssl_context=context)
    aiokafka_produce(ssl_bootstrap, topic, make_records(10, partition=1), security_protocol="SSL",
                     ssl_context=context)
    assert len(kafka_python_consume(ssl_bootstrap, topic, partition=1, count=20, security_protocol="SSL",
                                    ssl_context=context)) == 20
    assert len(aiokafka_consume(ssl_bootstrap, topic, partition=1, count=20, security_protocol="SSL",
                                ssl_context=context)) == 20


def test_large_fetch_over_tls_crosses_many_records(broker: SecureBroker, pki: Pki, topic: str) -> None:
    """A fetch response far larger than one TLS record and the encrypt budget (segment regions
    read with pread, encrypted in chunks) arrives whole."""
    create_topic(broker.bootstrap, topic, partitions=1)
    records = make_records(400, value_size=10_000, partition=0)
    confluent_produce(broker.bootstrap, topic, records)
    got = confluent_consume(broker.bootstrap_of("SSL"), topic, partition=0, count=400,
                            **_ssl(pki, **{"fetch.max.bytes": 8_000_000}))
    assert [r.value for r in got] == [r.value for r in records]


def test_client_without_the_ca_fails(broker: SecureBroker, pki: Pki) -> None:
    errors = _admin_errors(broker.bootstrap_of("SSL"), _ssl(pki, **{"ssl.ca.location": pki.rogue_ca}))
    assert errors, "a client that does not trust the broker's CA got metadata"
    wait_for(lambda: "listener=SSL" in broker.log_text() and "ALERT_UNKNOWN_CA" in broker.log_text(),
             what="the broker's audit line for the refused handshake")
    # with the CA the same listener works
    assert not _admin_errors(broker.bootstrap_of("SSL"), _ssl(pki))


def test_plaintext_client_on_tls_port_is_refused_and_others_keep_working(broker: SecureBroker, pki: Pki,
                                                                         topic: str) -> None:
    with Wire(broker.bootstrap_of("SSL")) as wire:
        wire.send(18, 0, {})  # ApiVersions in the clear
        assert wire.closed_by_broker(), "the broker kept a plaintext connection on its TLS port open"
    try:
        kafka_python_produce(broker.bootstrap_of("SSL"), topic, make_records(1), request_timeout_ms=3000,
                             max_block_ms=3000, api_version=(2, 8))
        raise AssertionError("a plaintext kafka-python producer was served by a TLS port")
    except (ClientError, Exception) as exc:
        assert "served by a TLS port" not in str(exc)
    assert api_versions_probe("127.0.0.1", broker.port)
    assert not _admin_errors(broker.bootstrap_of("SSL"), _ssl(pki))


def test_client_certificate_is_the_principal(broker: SecureBroker, pki: Pki) -> None:
    mtls = _ssl(pki, **{"ssl.certificate.location": pki.client_cert, "ssl.key.location": pki.client_key})
    assert not _admin_errors(broker.bootstrap_of("MTLS"), mtls)
    wait_for(lambda: "principal User:CN=alice,O=pyk-tests" in broker.log_text(), what="the certificate principal")


def test_required_client_auth_refuses_missing_or_foreign_certificates(broker: SecureBroker, pki: Pki) -> None:
    assert _admin_errors(broker.bootstrap_of("MTLS"), _ssl(pki))
    foreign = _ssl(pki, **{"ssl.certificate.location": pki.rogue_client_cert, "ssl.key.location": pki.rogue_client_key})
    assert _admin_errors(broker.bootstrap_of("MTLS"), foreign)
    wait_for(lambda: broker.log_text().count("listener=MTLS") >= 2, what="two audit lines for MTLS")


def test_start_up_says_how_tls_is_done(broker: SecureBroker) -> None:
    """One line at start-up: kernel TLS where the kernel has it (tests/security/guest_kernel_tls.py),
    else user-space TLS and why not (this kernel: no TLS ULP)."""
    from pyk.server.security.ktls import kernel_tls_missing

    missing = kernel_tls_missing()
    text = broker.log_text()
    if missing is None:
        lines = [line for line in text.splitlines() if "kernel TLS (fetches zero-copy)" in line]
        assert len(lines) == 1 and "user-space TLS" not in text, lines
        return
    lines = [line for line in text.splitlines() if "user-space TLS" in line]
    assert len(lines) == 1 and f"is not available here ({missing})" in lines[0], lines
