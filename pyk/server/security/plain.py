"""SASL/PLAIN (RFC 4616): users and passwords from Kafka's PlainLoginModule JAAS entry.

    listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\
        required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";

or the same entry in the KafkaServer section of a JAAS file (pyk.server.security.jaas).  Each
`user_<name>="<password>"` option is a user (Kafka's PlainServerCallbackHandler); `username` and
`password` are the broker's own client credentials, used between brokers.
"""

from __future__ import annotations

import hmac

from pyk.config import ServerConfig
from pyk.server.security.jaas import server_login
from pyk.server.security.mechanism import AuthenticationFailed

PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_FAILED = "Authentication failed: Invalid username or password"


def plain_users(config: ServerConfig, listener: str) -> dict[str, str]:
    """The users PLAIN accepts on `listener`: name -> password."""
    options, _ = server_login(config, listener, "PLAIN", PLAIN_LOGIN_MODULE, 'user_<name>="<password>" options')
    return {name[len("user_"):]: password for name, password in options.items() if name.startswith("user_")}


class PlainServer:
    """One PLAIN exchange: a single token `authzid NUL authcid NUL password`."""

    mechanism = "PLAIN"

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users
        self.complete = False
        self.principal = ""
        self.expires_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        try:
            authzid, user, password = token.decode("utf-8").split("\0")
        except ValueError:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 NUL-separated tokens") from None
        if not user:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if authzid and authzid != user:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id that is "
                                       "different from username", user)
        expected = self._users.get(user)
        if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
            raise AuthenticationFailed(_FAILED, user)
        self.complete = True
        self.principal = "User:" + user
        return b""


class PlainClient:
    """The client side of PLAIN (a broker authenticating to another): one token, no answer."""

    mechanism = "PLAIN"

    def __init__(self, user: str, password: str) -> None:
        self._token = f"\0{user}\0{password}".encode()

    def start(self) -> bytes:
        return self._token

    def evaluate(self, challenge: bytes) -> bytes | None:
        return None
