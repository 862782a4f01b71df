"""The SASL gate of SASL_PLAINTEXT / SASL_SSL listeners: SaslHandshake + SaslAuthenticate before
anything else, and re-authentication (KIP-368).

A connection on a SASL listener may send ApiVersions, then SaslHandshake (v1: the tokens travel
in SaslAuthenticate requests), then SaslAuthenticate until the mechanism completes.  Any other
request before that is a protocol violation: the connection closes with one log line, as Kafka's
SaslServerAuthenticator does, and so is a frame larger than sasl.server.max.receive.size
(512 KiB) before authentication (listener.py): an anonymous peer cannot make the broker allocate
socket.request.max.bytes.  Wrong credentials are answered with SASL_AUTHENTICATION_FAILED
and its message, one AUDIT line, and the connection closes once the answer is written.

Once authenticated, the connection's principal is the mechanism's (User:<name>) and frames go
to the dispatcher.  The session lasts connections.max.reauth.ms, or to the credential's expiry
(an OAuth token's exp) if that comes first; SaslAuthenticate says how long
(session_lifetime_ms), and a client re-authenticates on the same connection with a new
SaslHandshake + SaslAuthenticate, same mechanism, same principal.  A request that arrives after
the session expired closes the connection.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyk import protocol
from pyk.config import SASL_MECHANISMS, ConfigError, ServerConfig
from pyk.errors import ErrorCode, ProtocolViolation
from pyk.protocol.apis import ApiKey
from pyk.server.connection import Connection, Frame, FrameHandler, FrameResult
from pyk.server.security.gssapi_kerberos import GssapiServer, KerberosAcceptor
from pyk.server.security.mechanism import AuthenticationFailed, ServerMechanism
from pyk.server.security.oauth import OAuthBearerServer, OAuthValidator
from pyk.server.security.plain import PlainServer, plain_users
from pyk.server.security.scram import MECHANISMS as SCRAM_MECHANISMS
from pyk.server.security.scram import CredentialLookup, ScramServer
from pyk.server.security.settings import AUDIT, setting

log = logging.getLogger("pyk.server")

_API_KEY = struct.Struct(">h")
_BEFORE_AUTH = (ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE)

# A mechanism's exchange maker, given the SCRAM credentials of the shard's metadata.
MechanismFactory = Callable[[CredentialLookup], ServerMechanism]


@dataclass
class SaslSettings:
    """A SASL listener's enabled mechanisms (with what each checks against) and session lifetimes."""

    listener: str
    mechanisms: dict[str, MechanismFactory]
    reauth_ms: dict[str, int]  # connections.max.reauth.ms per mechanism; 0: sessions do not expire
    max_receive: int  # sasl.server.max.receive.size: frame limit before authentication
    max_request: int  # socket.request.max.bytes: the limit after it

    @classmethod
    def build(cls, config: ServerConfig, listener: str) -> SaslSettings:
        enabled = setting(config, listener, "sasl.enabled.mechanisms")
        unknown = [m for m in enabled if m not in SASL_MECHANISMS]
        if unknown or not enabled:
            raise ConfigError(f"sasl.enabled.mechanisms of listener {listener} is {','.join(enabled) or 'empty'}; "
                              f"pyk serves {', '.join(SASL_MECHANISMS)}")
        mechanisms: dict[str, MechanismFactory] = {}
        for name in enabled:
            if name == "PLAIN":
                users = plain_users(config, listener)
                mechanisms[name] = lambda _, users=users: PlainServer(users)  # type: ignore[misc]
            elif name == "GSSAPI":
                acceptor = KerberosAcceptor.build(config, listener)
                mechanisms[name] = lambda _, a=acceptor: GssapiServer(a)  # type: ignore[misc]
            elif name in SCRAM_MECHANISMS:
                mechanisms[name] = lambda lookup, name=name: ScramServer(name, lookup)  # type: ignore[misc]
            else:
                validator = OAuthValidator.build(config, listener)
                mechanisms[name] = lambda _, v=validator: OAuthBearerServer(v)  # type: ignore[misc]
        reauth = {name: setting(config, listener, "connections.max.reauth.ms", name) for name in enabled}
        return cls(listener, mechanisms, reauth, setting(config, listener, "sasl.server.max.receive.size"),
                   config["socket.request.max.bytes"])


@dataclass
class SaslSession:
    """One connection's SASL state (Connection.sasl)."""

    mechanism: str | None = None  # chosen by the last SaslHandshake
    exchange: ServerMechanism | None = None  # the authentication under way
    authenticated: bool = False
    expires_at: float | None = None  # monotonic time the session ends (None: never)


class SaslGate:
    """The frame handler of a SASL listener (see module docstring); `dispatch` serves what passes."""

    def __init__(self, settings: SaslSettings, dispatch: FrameHandler, credentials: CredentialLookup) -> None:
        self.settings = settings
        self._dispatch = dispatch
        self._credentials = credentials
        self._enabled = list(settings.mechanisms)

    def on_frame(self, conn: Connection, frame: Frame) -> FrameResult:
        session = conn.sasl
        if session is None:
            session = conn.sasl = SaslSession()
        api_key = _API_KEY.unpack_from(frame, 0)[0] if len(frame) >= 2 else -1
        if session.authenticated and api_key not in (ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE):
            if session.expires_at is not None and time.monotonic() > session.expires_at:
                conn.close("SASL session expired (connections.max.reauth.ms or credential lifetime) without "
                           "re-authentication", level=logging.WARNING)
                return None
            return self._dispatch(conn, frame)
        if api_key not in _BEFORE_AUTH:
            name = ApiKey(api_key).name if protocol.is_known(api_key) else str(api_key)
            raise ProtocolViolation(f"{name} request before SASL authentication completed on listener "
                                    f"{self.settings.listener}")
        if api_key == ApiKey.API_VERSIONS:
            return self._dispatch(conn, frame)
        view = memoryview(frame)
        header, offset = protocol.decode_request_header(view)
        conn.client_id = header.client_id
        if header.api_version not in range(protocol.SUPPORTED[ApiKey(api_key)][0], protocol.SUPPORTED[ApiKey(api_key)][1] + 1):
            raise ProtocolViolation(f"{ApiKey(api_key).name} v{header.api_version} is not supported")
        request = protocol.decode_request(api_key, header.api_version, view, offset)
        if api_key == ApiKey.SASL_HANDSHAKE:
            body = self._handshake(conn, session, request["mechanism"])
        else:
            body = self._authenticate(conn, session, request["auth_bytes"], header.api_version)
        return protocol.encode_response(api_key, header.api_version, header.correlation_id, body)

    def _handshake(self, conn: Connection, session: SaslSession, mechanism: str) -> dict[str, object]:
        answer: dict[str, object] = {"error_code": ErrorCode.NONE, "mechanisms": self._enabled}
        factory = self.settings.mechanisms.get(mechanism)
        if factory is None:
            self._fail(conn, mechanism, None, f"mechanism {mechanism} is not enabled")
            answer["error_code"] = ErrorCode.UNSUPPORTED_SASL_MECHANISM
        elif session.authenticated and mechanism != session.mechanism:
            self._fail(conn, mechanism, None, f"re-authentication with {mechanism} after {session.mechanism}")
            answer["error_code"] = ErrorCode.ILLEGAL_SASL_STATE
        else:
            session.mechanism = mechanism
            session.exchange = factory(self._credentials)
        return answer

    def _authenticate(self, conn: Connection, session: SaslSession, token: bytes, version: int) -> dict[str, object]:
        exchange = session.exchange
        if exchange is None:
            self._fail(conn, session.mechanism, None, "SaslAuthenticate without a SaslHandshake before it")
            return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": "SaslHandshake first",
                    "auth_bytes": b""}
        try:
            challenge = exchange.evaluate(bytes(token))
            if exchange.complete and session.authenticated and exchange.principal != conn.principal:
                raise AuthenticationFailed(f"re-authentication as {exchange.principal} on a connection of "
                                           f"{conn.principal}")
        except AuthenticationFailed as exc:
            self._fail(conn, exchange.mechanism, exc.user, exc.message)
            return {"error_code": ErrorCode.SASL_AUTHENTICATION_FAILED, "error_message": exc.message,
                    "auth_bytes": b""}
        answer: dict[str, object] = {"error_code": ErrorCode.NONE, "auth_bytes": challenge, "session_lifetime_ms": 0}
        if exchange.complete:
            session.exchange = None
            lifetime = self._lifetime_ms(exchange)
            session.expires_at = time.monotonic() + lifetime / 1000 if lifetime else None
            if version >= 1:
                answer["session_lifetime_ms"] = lifetime
            log.debug("connection %s %s as %s (%s)", conn.peer,
                      "re-authenticated" if session.authenticated else "authenticated", exchange.principal,
                      exchange.mechanism)
            session.authenticated = True
            conn.principal = exchange.principal
            conn.max_request_bytes = self.settings.max_request
        return answer

    def _lifetime_ms(self, exchange: ServerMechanism) -> int:
        """Kafka's rule: the smaller of connections.max.reauth.ms (if > 0) and the credential's
        remaining life (if it expires); 0 when neither applies."""
        limits = [self.settings.reauth_ms.get(exchange.mechanism, 0)]
        if exchange.expires_ms is not None:
            limits.append(max(1, exchange.expires_ms - int(time.time() * 1000)))
        positive = [limit for limit in limits if limit > 0]
        return min(positive) if positive else 0

    def _fail(self, conn: Connection, mechanism: str | None, user: str | None, reason: str) -> None:
        AUDIT.warning("authentication failed: listener=%s peer=%s mechanism=%s user=%s: %s", self.settings.listener,
                      conn.peer, mechanism, user, reason)
        conn.close_when_sent(f"SASL authentication failed ({mechanism})")
