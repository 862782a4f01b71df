"""SASL listeners against real clients: PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER, right credentials
served, wrong ones answered with SASL_AUTHENTICATION_FAILED and a closed connection; requests
before authentication close the connection; SCRAM credentials managed with the admin API survive
a restart; sessions expire and clients re-authenticate (KIP-368)."""

from __future__ import annotations

import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    aiokafka_consume,
    aiokafka_produce,
    confluent_consume,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    kafka_python_produce,
    make_records,
    wait_for,
)
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.pki import Pki
from tests.security.wire import Wire

SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


def _sasl(mechanism: str, user: str, password: str, pki: Pki | None = None) -> dict[str, Any]:
    conf = {"security.protocol": "SASL_SSL" if pki else "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}
    if pki:
        conf["ssl.ca.location"] = pki.ca
    return conf


def _auth_errors(bootstrap: str, conf: dict[str, Any]) -> list[Any]:
    """Errors a confluent producer reports while trying to authenticate and deliver one record."""
    from confluent_kafka import Producer

    errors: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, **conf, "error_cb": errors.append, "message.timeout.ms": 4000})
    producer.produce("auth-probe", b"x", on_delivery=lambda err, msg: errors.append(err) if err else None)
    producer.flush(6)
    return errors


def _scram_users(bootstrap: str, users: dict[str, str], iterations: int = 4096) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    changes = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, iterations), password.encode())
               for user, password in users.items() for mechanism in (ScramMechanism.SCRAM_SHA_256,
                                                                      ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(changes).values():
        future.result(15)


def test_plain_with_every_client(broker: SecureBroker, pki: Pki, topic: str) -> None:
    create_topic(broker.bootstrap, topic, partitions=2)
    records = make_records(20, partition=0)
    confluent_produce(broker.bootstrap_of("SASL_SSL"), topic, records, **_sasl("PLAIN", "alice", "alice-secret", pki))
    got = confluent_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, count=20,
                            **_sasl("PLAIN", "alice", "alice-secret"))
    assert [r.value for r in got] == [r.value for r in records]
    plain = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "alice",
             "sasl_plain_password": "alice-secret"}
    kafka_python_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(5, partition=1), **plain)
    aiokafka_produce(broker.bootstrap_of("SASL_SSL"), topic, make_records(5, partition=1),
                     **{**plain, "security_protocol": "SASL_SSL", "ssl_context": ssl.create_default_context(cafile=pki.ca)})
    assert len(kafka_python_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, partition=1, count=10, **plain)) == 10
    assert len(aiokafka_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, partition=1, count=10, **plain)) == 10


def test_wrong_password_gets_sasl_authentication_failed_and_a_closed_connection(broker: SecureBroker) -> None:
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        answer = wire.authenticate("PLAIN", b"\0alice\0not-her-password")
        assert answer["error_code"] == SASL_AUTHENTICATION_FAILED
        assert answer["error_message"] == "Authentication failed: Invalid username or password"
        assert wire.closed_by_broker()
    wait_for(lambda: "mechanism=PLAIN user=alice: Authentication failed" in broker.log_text(), what="the audit line")
    errors = _auth_errors(broker.bootstrap_of("SASL_PLAINTEXT"), _sasl("PLAIN", "alice", "wrong"))
    assert any("Invalid username or password" in str(e) for e in errors), errors


def test_requests_before_authentication_close_the_connection(broker: SecureBroker) -> None:
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        versions = wire.request(18, 0, {})  # ApiVersions is allowed first
        assert {17, 36} <= {k["api_key"] for k in versions["api_keys"]}
        wire.send(3, 1, {"topics": []})  # Metadata before SaslHandshake
        assert wire.closed_by_broker()
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        handshake = wire.request(17, 1, {"mechanism": "GSSAPI"})
        assert handshake["error_code"] == UNSUPPORTED_SASL_MECHANISM
        assert handshake["mechanisms"] == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
        assert wire.closed_by_broker()
    assert "Metadata" in broker.log_text() or "METADATA request before SASL authentication" in broker.log_text()


def test_scram_credentials_from_the_admin_api(broker: SecureBroker, pki: Pki, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, ScramMechanism, UserScramCredentialDeletion

    _scram_users(broker.bootstrap, {"bob": "bob-secret", "carol": "carol-secret"}, iterations=8192)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    described = admin.describe_user_scram_credentials(["bob"])["bob"].result(15)
    assert sorted((i.mechanism, i.iterations) for i in described.scram_credential_infos) == [
        (ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 8192)]
    create_topic(broker.bootstrap, topic)
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        confluent_produce(broker.bootstrap_of("SASL_SSL"), topic, make_records(3), **_sasl(mechanism, "bob", "bob-secret", pki))
        errors = _auth_errors(broker.bootstrap_of("SASL_SSL"), _sasl(mechanism, "bob", "wrong", pki))
        assert any("invalid credentials" in str(e) for e in errors), errors
    scram = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "carol",
             "sasl_plain_password": "carol-secret"}
    kafka_python_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(3), **scram)
    aiokafka_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(3),
                     **{**scram, "sasl_mechanism": "SCRAM-SHA-512"})
    assert len(confluent_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, count=12,
                                 **_sasl("SCRAM-SHA-512", "carol", "carol-secret"))) == 12
    # deleting a credential refuses the user for that mechanism only
    admin.alter_user_scram_credentials([UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)])["bob"].result(15)
    assert _auth_errors(broker.bootstrap_of("SASL_PLAINTEXT"), _sasl("SCRAM-SHA-256", "bob", "bob-secret"))
    confluent_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(1),
                      **_sasl("SCRAM-SHA-512", "bob", "bob-secret"))


def test_scram_credential_validation(broker: SecureBroker) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    few = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"pw")])["dave"]
    with pytest.raises(Exception, match="Too few iterations"):
        few.result(15)
    missing = admin.alter_user_scram_credentials([UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_512)])
    with pytest.raises(Exception, match="does not exist"):
        missing["nobody"].result(15)
    with pytest.raises(Exception, match="does not exist"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(15)


def test_scram_users_survive_a_restart(tmp_path: Path, pki: Pki, topic: str) -> None:
    b = secure_broker(tmp_path, pki)
    b.start()
    try:
        _scram_users(b.bootstrap, {"erin": "erin-secret"})
        b.restart()
        confluent_produce(b.bootstrap_of("SASL_SSL"), topic, make_records(2), **_sasl("SCRAM-SHA-256", "erin", "erin-secret", pki))
        stored = (b.log_dir / "pyk-cluster-metadata.json").read_text()
        assert "erin" in stored and "erin-secret" not in stored
    finally:
        stop_and_check(b)


def _oauth(token: tuple[str, float], pki: Pki | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {"security.protocol": "SASL_SSL" if pki else "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                            "oauth_cb": lambda _config: token}
    if pki:
        conf["ssl.ca.location"] = pki.ca
    return conf


def test_oauthbearer_signed_tokens(broker: SecureBroker, pki: Pki, topic: str) -> None:
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap_of("SASL_SSL"), topic, make_records(3), **_oauth(pki.token("frank"), pki))
    errors = _auth_errors(broker.bootstrap_of("SASL_PLAINTEXT"), _oauth(pki.token("frank", key=pki.other_jwt_key)))
    assert any("invalid_token" in str(e) for e in errors), errors
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:  # librdkafka will not even send an expired token
        expired, _ = pki.token("frank", lifetime_s=-120)
        answer = wire.authenticate("OAUTHBEARER", f"n,,\x01auth=Bearer {expired}\x01\x01".encode())
        assert answer["error_code"] == SASL_AUTHENTICATION_FAILED and "expired" in answer["error_message"]
        assert wire.closed_by_broker()
    errors = _auth_errors(broker.bootstrap_of("SASL_PLAINTEXT"), _oauth(pki.token("frank", audience="someone-else")))
    assert any("Audience" in str(e) for e in errors), errors
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        token, _ = pki.token("frank", lifetime_s=60)
        answer = wire.authenticate("OAUTHBEARER", f"n,,\x01auth=Bearer {token}\x01\x01".encode())
        assert answer["error_code"] == 0
        assert 0 < answer["session_lifetime_ms"] <= 60_000  # the token's remaining life bounds the session


def test_oauthbearer_with_kafka_python_and_aiokafka(broker: SecureBroker, pki: Pki, topic: str) -> None:
    """The two Python clients' token providers (kafka-python's, aiokafka's async one) against the
    same JWKS: a signed token works over SASL_SSL and SASL_PLAINTEXT, one signed by another key
    is refused."""
    from aiokafka.abc import AbstractTokenProvider as AsyncTokenProvider
    from kafka.errors import KafkaError
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Tokens(AbstractTokenProvider):
        def __init__(self, key: Any = None) -> None:
            super().__init__()
            self.jwt = pki.token("frank", key=key)[0]

        def token(self) -> str:
            return self.jwt

    class AsyncTokens(AsyncTokenProvider):
        async def token(self) -> str:
            return pki.token("frank")[0]

    create_topic(broker.bootstrap, topic)
    oauth = {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
             "ssl_context": ssl.create_default_context(cafile=pki.ca)}
    kafka_python_produce(broker.bootstrap_of("SASL_SSL"), topic, make_records(5),
                         **{**oauth, "sasl_oauth_token_provider": Tokens()})
    aiokafka_produce(broker.bootstrap_of("SASL_SSL"), topic, make_records(5),
                     **{**oauth, "sasl_oauth_token_provider": AsyncTokens()})
    plain_oauth = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER"}
    assert len(kafka_python_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, count=10,
                                    **{**plain_oauth, "sasl_oauth_token_provider": Tokens()})) == 10
    assert len(aiokafka_consume(broker.bootstrap_of("SASL_PLAINTEXT"), topic, count=10,
                                **{**plain_oauth, "sasl_oauth_token_provider": AsyncTokens()})) == 10
    refusals = broker.log_text().count("mechanism=OAUTHBEARER user=None: invalid_token")
    with pytest.raises(KafkaError):
        kafka_python_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, make_records(1),
                             **{**plain_oauth, "sasl_oauth_token_provider": Tokens(key=pki.other_jwt_key)})
    wait_for(lambda: broker.log_text().count("mechanism=OAUTHBEARER user=None: invalid_token") > refusals,
             what="the audit line of the refused token")


def test_sessions_expire_and_clients_reauthenticate(tmp_path: Path, pki: Pki, topic: str) -> None:
    b = secure_broker(tmp_path, pki, log_level="DEBUG", **{"connections.max.reauth.ms": 1500})
    b.start()
    try:
        with Wire(b.bootstrap_of("SASL_PLAINTEXT")) as wire:
            answer = wire.authenticate("PLAIN", b"\0alice\0alice-secret", version=1)
            assert (answer["error_code"], answer["session_lifetime_ms"]) == (0, 1500)
            assert wire.request(3, 1, {"topics": []})["brokers"]  # served while the session lasts
            time.sleep(1.6)  # let the session run out, then ask without re-authenticating
            wire.send(3, 1, {"topics": []})
            assert wire.closed_by_broker()
        wait_for(lambda: "SASL session expired" in b.log_text(), what="the expiry line")
        create_topic(b.bootstrap, topic)
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": b.bootstrap_of("SASL_PLAINTEXT"),
                             **_sasl("PLAIN", "alice", "alice-secret")})
        for _ in range(2):
            producer.produce(topic, b"before")
            assert producer.flush(15) == 0
        wait_for(lambda: "re-authenticated as User:alice" in b.log_text(), timeout=20, what="a re-authentication")
        producer.produce(topic, b"after")
        assert producer.flush(15) == 0
    finally:
        stop_and_check(b)


def test_pyk_users_cli(broker: SecureBroker, topic: str) -> None:
    def pyk_users(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pyk", "users", *argv], capture_output=True, text=True,
                              timeout=60, check=False)

    added = pyk_users("--bootstrap", broker.bootstrap, "add", "gina", "--password", "gina-secret", "--iterations", "5000")
    assert added.returncode == 0 and "updated gina (SCRAM-SHA-256, SCRAM-SHA-512)" in added.stdout, added
    # the tool itself authenticates as gina over SASL to read her credentials back
    described = pyk_users("--bootstrap", broker.bootstrap_of("SASL_PLAINTEXT"), "-X", "security.protocol=SASL_PLAINTEXT",
                          "-X", "sasl.mechanism=SCRAM-SHA-512", "-X", "sasl.username=gina", "-X",
                          "sasl.password=gina-secret", "describe", "gina")
    assert "gina\tSCRAM-SHA-256 (iterations 5000), SCRAM-SHA-512 (iterations 5000)" in described.stdout, described
    assert pyk_users("--bootstrap", broker.bootstrap, "delete", "gina").returncode == 0
    missing = pyk_users("--bootstrap", broker.bootstrap, "describe", "gina")
    assert missing.returncode == 1 and "does not exist" in missing.stdout


def test_unauthenticated_frames_are_small(broker: SecureBroker, topic: str) -> None:
    """Before SASL authentication a frame may not exceed sasl.server.max.receive.size (512 KiB);
    after it, socket.request.max.bytes applies."""
    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        wire.sock.sendall(struct.pack(">i", 1_000_000) + b"\0" * 1000)  # announces 1 MB, unauthenticated
        assert wire.closed_by_broker()
    wait_for(lambda: "frame size 1000000 outside [0, 524288]" in broker.log_text(), what="the refusal line")
    create_topic(broker.bootstrap, topic)
    big = make_records(1, value_size=700_000)
    confluent_produce(broker.bootstrap_of("SASL_PLAINTEXT"), topic, big, **_sasl("PLAIN", "alice", "alice-secret"))
