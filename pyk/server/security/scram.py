"""SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677): the server side of the exchange and the
stored credentials.

Credentials are Kafka's (KIP-554): AlterUserScramCredentials carries the salt, the iteration
count and the salted password the client computed; the broker keeps only the salt, the count,
StoredKey = H(HMAC(salted, "Client Key")) and ServerKey = HMAC(salted, "Server Key"), in the
cluster metadata (pyk.server.metadata_store), so they survive restarts and every shard has them.
Neither the password nor the salted password is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyk.server.security.mechanism import AuthenticationFailed

# Kafka's ScramMechanism: wire type of each mechanism and its hash.
MECHANISMS: dict[str, tuple[int, str]] = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
BY_TYPE = {code: name for name, (code, _) in MECHANISMS.items()}
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 16384  # Kafka's bounds for AlterUserScramCredentials

_FAILED = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"


@dataclass(frozen=True)
class ScramCredential:
    """One user's stored credential for one mechanism."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    @classmethod
    def from_salted_password(cls, mechanism: str, salt: bytes, salted_password: bytes,
                             iterations: int) -> ScramCredential:
        digest = MECHANISMS[mechanism][1]
        client_key = hmac.digest(salted_password, b"Client Key", digest)
        return cls(salt, hashlib.new(digest, client_key).digest(), hmac.digest(salted_password, b"Server Key", digest),
                   iterations)

    @classmethod
    def from_password(cls, mechanism: str, password: str, iterations: int = MIN_ITERATIONS) -> ScramCredential:
        salt = secrets.token_bytes(24)
        salted = hashlib.pbkdf2_hmac(MECHANISMS[mechanism][1], password.encode(), salt, iterations)
        return cls.from_salted_password(mechanism, salt, salted, iterations)

    def to_doc(self) -> dict[str, Any]:
        return {"salt": _b64(self.salt), "stored_key": _b64(self.stored_key), "server_key": _b64(self.server_key),
                "iterations": self.iterations}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ScramCredential:
        return cls(base64.b64decode(doc["salt"]), base64.b64decode(doc["stored_key"]),
                   base64.b64decode(doc["server_key"]), int(doc["iterations"]))


# (user, mechanism) -> the stored credential, or None for an unknown user.
CredentialLookup = Callable[[str, str], ScramCredential | None]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _attributes(message: bytes, mechanism: str) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
        return dict(item.split("=", 1) for item in text.split(","))
    except ValueError:
        raise AuthenticationFailed(f"malformed {mechanism} message") from None


class ScramServer:
    """One SCRAM exchange: client-first -> server-first, client-final -> server-final."""

    def __init__(self, mechanism: str, lookup: CredentialLookup) -> None:
        self.mechanism = mechanism
        self._digest = MECHANISMS[mechanism][1]
        self._lookup = lookup
        self.complete = False
        self.principal = ""
        self.expires_ms: int | None = None
        self._state: tuple[bytes, bytes, str, ScramCredential] | None = None  # gs2 header, client-first-bare, nonce, credential

    def evaluate(self, token: bytes) -> bytes:
        if self._state is None:
            return self._first(token)
        return self._final(token)

    def _first(self, token: bytes) -> bytes:
        gs2, sep, bare = token.partition(b",")
        authzid, sep2, bare = bare.partition(b",")
        if not sep or not sep2 or gs2 not in (b"n", b"y"):
            raise AuthenticationFailed(f"{self.mechanism}: unsupported channel binding or malformed client-first message")
        attributes = _attributes(bare, self.mechanism)
        if "n" not in attributes or "r" not in attributes:
            raise AuthenticationFailed(f"{self.mechanism}: client-first message lacks n= or r=")
        if attributes.get("tokenauth", "false") == "true":
            raise AuthenticationFailed(f"{self.mechanism}: delegation tokens are not supported")
        user = attributes["n"].replace("=2C", ",").replace("=3D", "=")
        self.principal = "User:" + user
        credential = self._lookup(user, self.mechanism)
        if credential is None:
            raise AuthenticationFailed(_FAILED.format(self.mechanism), user)
        nonce = attributes["r"] + secrets.token_urlsafe(24)
        self._state = (gs2 + b"," + authzid + b",", bare, nonce, credential)
        self._server_first = f"r={nonce},s={_b64(credential.salt)},i={credential.iterations}".encode()
        return self._server_first

    def _final(self, token: bytes) -> bytes:
        assert self._state is not None
        gs2_header, client_first_bare, nonce, credential = self._state
        without_proof, sep, proof_text = token.rpartition(b",p=")
        attributes = _attributes(without_proof, self.mechanism)
        user = self.principal[len("User:"):]
        if not sep or attributes.get("r") != nonce or attributes.get("c") != _b64(gs2_header):
            raise AuthenticationFailed(f"{self.mechanism}: nonce or channel binding mismatch", user)
        auth_message = client_first_bare + b"," + self._server_first + b"," + without_proof
        signature = hmac.digest(credential.stored_key, auth_message, self._digest)
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except ValueError:
            raise AuthenticationFailed(f"{self.mechanism}: malformed proof", user) from None
        if len(proof) != len(signature):
            raise AuthenticationFailed(_FAILED.format(self.mechanism), user)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._digest, client_key).digest(), credential.stored_key):
            raise AuthenticationFailed(_FAILED.format(self.mechanism), user)
        self.complete = True
        return b"v=" + _b64(hmac.digest(credential.server_key, auth_message, self._digest)).encode()


class ScramClient:
    """The client side of one SCRAM exchange (a broker authenticating to another): client-first,
    then client-final with the proof, then the server's signature checked (RFC 5802 section 3)."""

    def __init__(self, mechanism: str, user: str, password: str) -> None:
        self._digest = MECHANISMS[mechanism][1]
        self.mechanism = mechanism
        self._password = password
        name = user.replace("=", "=3D").replace(",", "=2C")
        self._first_bare = f"n={name},r={secrets.token_urlsafe(24)}".encode()
        self._server_signature: bytes | None = None

    def start(self) -> bytes:
        return b"n,," + self._first_bare

    def evaluate(self, challenge: bytes) -> bytes | None:
        """The next token for the server's `challenge`; None once the server proved itself."""
        if self._server_signature is not None:
            attributes = _attributes(challenge, self.mechanism)
            if "e" in attributes:
                raise AuthenticationFailed(f"{self.mechanism}: the server refused: {attributes['e']}")
            if not hmac.compare_digest(base64.b64decode(attributes.get("v", "")), self._server_signature):
                raise AuthenticationFailed(f"{self.mechanism}: the server's signature does not match")
            return None
        attributes = _attributes(challenge, self.mechanism)
        nonce, salt, iterations = attributes.get("r", ""), attributes.get("s"), attributes.get("i", "")
        client_nonce = self._first_bare.decode().rpartition("r=")[2]
        if not nonce.startswith(client_nonce) or salt is None or not iterations.isdigit():
            raise AuthenticationFailed(f"{self.mechanism}: malformed server-first message")
        if not MIN_ITERATIONS <= int(iterations) <= MAX_ITERATIONS:  # the bounds credentials are stored with
            raise AuthenticationFailed(f"{self.mechanism}: {iterations} iterations outside [{MIN_ITERATIONS}, "
                                       f"{MAX_ITERATIONS}]")
        salted = hashlib.pbkdf2_hmac(self._digest, self._password.encode(), base64.b64decode(salt), int(iterations))
        client_key = hmac.digest(salted, b"Client Key", self._digest)
        without_proof = f"c={_b64(b'n,,')},r={nonce}".encode()
        auth_message = self._first_bare + b"," + challenge + b"," + without_proof
        signature = hmac.digest(hashlib.new(self._digest, client_key).digest(), auth_message, self._digest)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = hmac.digest(hmac.digest(salted, b"Server Key", self._digest), auth_message,
                                             self._digest)
        return without_proof + b",p=" + _b64(proof).encode()
