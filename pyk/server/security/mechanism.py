"""What every SASL mechanism's server side looks like to the gate (pyk.server.security.sasl)."""

from __future__ import annotations

from typing import Protocol


class AuthenticationFailed(Exception):
    """Wrong or malformed credentials: answered with SASL_AUTHENTICATION_FAILED and `message`,
    then the connection closes.  `user` is who the client claimed to be, for the audit line."""

    def __init__(self, message: str, user: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.user = user


class ServerMechanism(Protocol):
    """One authentication exchange: tokens in, challenges out, until `complete`."""

    mechanism: str
    complete: bool
    principal: str  # "User:name" once complete
    expires_ms: int | None  # when the credential expires (epoch ms: an OAuth token's exp), if it does

    def evaluate(self, token: bytes) -> bytes:
        """The answer to one client token; AuthenticationFailed when the client is refused."""
        ...
