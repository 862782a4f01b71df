"""A broker with every security protocol on its own listener, for the tests of this package.

Listeners: PLAINTEXT (the readiness probe's and the admin's), SSL (client certificate
requested), MTLS (SSL, client certificate required), SASL_PLAINTEXT and SASL_SSL with PLAIN,
SCRAM-SHA-256/512 and OAUTHBEARER; each on its own ports (shard i: port + i).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TEST_SHARDS, BrokerProcess, free_port
from tests.security.pki import KEY_PASSWORD, Pki

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')
SECURED = ("SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def security_overrides(pki: Pki, ports: dict[str, int], plaintext_port: int, **extra: Any) -> dict[str, str]:
    listeners = [f"PLAINTEXT://127.0.0.1:{plaintext_port}"] + [f"{n}://127.0.0.1:{p}" for n, p in ports.items()]
    conf = {
        "listeners": ",".join(listeners),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                          "SASL_SSL:SASL_SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki.keystore,
        "ssl.key.password": KEY_PASSWORD,
        "ssl.truststore.location": pki.ca,
        "ssl.client.auth": "requested",
        "listener.name.mtls.ssl.client.auth": "required",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "sasl.oauthbearer.jwks.endpoint.url": pki.jwks,
        "sasl.oauthbearer.expected.audience": "pyk",
        "sasl.oauthbearer.expected.issuer": "pyk-tests",
    }
    conf.update({k: str(v) for k, v in extra.items()})
    return conf


class SecureBroker(BrokerProcess):
    """A BrokerProcess with the secured listeners' ports."""

    ports: dict[str, int]

    def bootstrap_of(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


def secure_broker(workdir: Path, pki: Pki, log_level: str = "INFO", shards: int = TEST_SHARDS,
                  **extra: Any) -> SecureBroker:
    port = free_port(shards * (1 + len(SECURED)))  # one block: no listener can collide with another's shards
    ports = {name: port + shards * (1 + i) for i, name in enumerate(SECURED)}
    b = SecureBroker(workdir, security_overrides(pki, ports, port, **extra), port=port, shards=shards,
                     log_level=log_level)
    b.ports = ports
    return b


def stop_and_check(b: BrokerProcess) -> None:
    if b.running:
        assert b.stop() == 0, b.log_tail()
    assert "Traceback (most recent call last)" not in b.log_text(), b.log_tail()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    b = secure_broker(tmp_path_factory.mktemp("pyk-secure"), pki, log_level="DEBUG")
    b.start()
    try:
        yield b
    finally:
        stop_and_check(b)
