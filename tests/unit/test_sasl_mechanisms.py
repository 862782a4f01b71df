"""The server side of each SASL mechanism on hostile tokens: whatever a client sends, the answer is
a challenge or AuthenticationFailed (SASL_AUTHENTICATION_FAILED and a closed connection), never
another exception (a traceback, a tier-c bug).  The live exchanges with real clients are in
tests/security/."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from pyk.config import ServerConfig
from pyk.server.security.mechanism import AuthenticationFailed, ServerMechanism
from pyk.server.security.oauth import OAuthBearerServer, OAuthValidator
from pyk.server.security.plain import PlainServer
from pyk.server.security.scram import ScramCredential, ScramServer

_CREDENTIAL = ScramCredential.from_password("SCRAM-SHA-256", "pencil")


def _lookup(user: str, mechanism: str) -> ScramCredential | None:
    return _CREDENTIAL if user == "user" and mechanism == "SCRAM-SHA-256" else None


def _validator(tmp: Path) -> OAuthValidator:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp / "jwks.json").write_text(json.dumps({"keys": [dict(jwk, kid="k1")]}))
    return OAuthValidator.build(ServerConfig({"sasl.oauthbearer.jwks.endpoint.url": (tmp / "jwks.json").as_uri()}),
                                "SASL_SSL")


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> OAuthValidator:
    return _validator(tmp_path_factory.mktemp("jwks"))


def _answers_or_refuses(server: ServerMechanism, tokens: list[bytes]) -> None:
    for token in tokens:
        try:
            server.evaluate(token)
        except AuthenticationFailed:
            return
        if server.complete:
            return


_TOKENS = st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode),
                             st.sampled_from([b"n,,n=user,r=abc", b"\0user\0pencil", b"n,,\x01auth=Bearer x\x01\x01",
                                              b"c=biws,r=abc,p=AAAA", b"y,,n=user,r=", b"n,a=x,n=,r=="])),
                   min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(_TOKENS)
def test_plain_and_scram_never_raise_anything_else(tokens: list[bytes]) -> None:
    _answers_or_refuses(PlainServer({"user": "pencil"}), tokens)
    _answers_or_refuses(ScramServer("SCRAM-SHA-256", _lookup), tokens)


@settings(max_examples=200, deadline=None)
@given(_TOKENS)
def test_oauthbearer_never_raises_anything_else(validator: OAuthValidator, tokens: list[bytes]) -> None:
    _answers_or_refuses(OAuthBearerServer(validator), tokens)


def test_scram_exchange_from_the_rfc_formulas() -> None:
    """An RFC 5802 client written from the RFC's formulas authenticates; a wrong proof does not."""
    for password, accepted in (("pencil", True), ("pen", False)):
        server = ScramServer("SCRAM-SHA-256", _lookup)
        first_bare = b"n=user,r=rOprNGfwEbeRWgbNEkqO"
        fields = dict(kv.split("=", 1) for kv in server.evaluate(b"n,," + first_bare).decode().split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={fields['r']}".encode()
        auth = first_bare + b"," + f"r={fields['r']},s={fields['s']},i={fields['i']}".encode() + b"," + without_proof
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))
        if not accepted:
            with pytest.raises(AuthenticationFailed, match="invalid credentials"):
                server.evaluate(without_proof + b",p=" + proof)
            continue
        final = server.evaluate(without_proof + b",p=" + proof)
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        assert final == b"v=" + base64.b64encode(hmac.digest(server_key, auth, "sha256"))
        assert server.complete and server.principal == "User:user"


# The client twins a broker uses towards another (pyk/server/security/inter_broker.py) --------------

@pytest.mark.parametrize("password, ok", [("pencil", True), ("crayon", False)])
def test_scram_client_against_the_server(password: str, ok: bool) -> None:
    from pyk.server.security.scram import ScramClient

    client, server = ScramClient("SCRAM-SHA-256", "user", password), ScramServer("SCRAM-SHA-256", _lookup)
    final = client.evaluate(server.evaluate(client.start()))
    assert final is not None
    if not ok:
        with pytest.raises(AuthenticationFailed):
            server.evaluate(final)
        return
    assert client.evaluate(server.evaluate(final)) is None and server.principal == "User:user"
    with pytest.raises(AuthenticationFailed):  # a server that does not know the password cannot prove it
        ScramClient("SCRAM-SHA-256", "user", "pencil").evaluate(b"v=" + base64.b64encode(b"x" * 32))


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=3))
def test_scram_client_on_hostile_answers(answers: list[bytes]) -> None:
    """Whatever the other broker answers: a next token, the end, or AuthenticationFailed/ValueError
    (both InterBrokerAuthenticationError for the fetcher), never anything else."""
    from pyk.server.security.scram import ScramClient

    client = ScramClient("SCRAM-SHA-512", "broker", "secret")
    client.start()
    for answer in answers:
        try:
            if client.evaluate(answer) is None:
                return
        except (AuthenticationFailed, ValueError):
            return
