"""The client side of broker-to-broker connections: replica fetchers and transaction markers
reach other nodes on the inter-broker listener, with its security (Kafka's
`inter.broker.listener.name`, else the listener named `security.inter.broker.protocol`).

* TLS (SSL, SASL_SSL): the listener's ssl.* keys, as a client (tls.client_context): the other
  broker's certificate is checked against the truststore (and its host name), the keystore is
  this broker's client certificate.
* SASL (SASL_PLAINTEXT, SASL_SSL): `sasl.mechanism.inter.broker.protocol` with the
  `username`/`password` options of the listener's JAAS entry for that mechanism
  (`listener.name.<l>.<mechanism>.sasl.jaas.config`, else the KafkaServer section of the JAAS
  file: pyk.server.security.jaas), as Kafka's brokers use them: PLAIN (PlainLoginModule) or SCRAM-SHA-256/512 (ScramLoginModule; the user's SCRAM
  credential lives in the cluster metadata like any other); GSSAPI with the principal and keytab
  of the listener's Krb5LoginModule line, for `<sasl.kerberos.service.name>@<the other broker's
  registered host>`.  SaslHandshake v1, then
  SaslAuthenticate v2 until the mechanism completes; the answer's session lifetime (KIP-368,
  connections.max.reauth.ms on the other side) sets when the connection re-authenticates in
  place: before a request, once 85 % of it has passed (Kafka's clients pick 85-95 %).

The other broker authenticates this one as any client: its principal (User:<username>, or the
certificate's subject on SSL) is what its authorizer sees for CLUSTER_ACTION and what super.users
names.  A refused authentication raises InterBrokerAuthenticationError (a ConnectionError, so the
callers' retry paths take it); the refusing broker writes the audit line.

The web console (pyk.console) reaches its broker through this client too, so it passes a secured
listener and ACLs as the broker's principal.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

from pyk.client import Connection
from pyk.config import ConfigError, ServerConfig
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.security.gssapi_kerberos import GssapiClient, initiator_credentials
from pyk.server.security.jaas import server_login
from pyk.server.security.mechanism import AuthenticationFailed
from pyk.server.security.plain import PLAIN_LOGIN_MODULE, PlainClient
from pyk.server.security.scram import MECHANISMS as SCRAM_MECHANISMS
from pyk.server.security.scram import ScramClient
from pyk.server.security.settings import setting
from pyk.server.security.tls import client_context

SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
SASL_AUTHENTICATE_VERSION = 2  # v1+ carries the session lifetime
REAUTH_FRACTION = 0.85  # of the session lifetime, when the connection re-authenticates
CONNECT_TIMEOUT_S = 10.0  # for the TCP (and TLS) connection, and again for the SASL exchange

ClientMechanism = PlainClient | ScramClient | GssapiClient


class InterBrokerAuthenticationError(ConnectionError):
    """The other broker refused this one's credentials (or this one refused the other's answer)."""


class InterBrokerClient:
    """Opens connections to other nodes' inter-broker listener (see module docstring).  Built once
    per shard from the static config; stateless between connections, so one event loop may
    share it among its fetchers and the transaction marker sender."""

    def __init__(self, config: ServerConfig) -> None:
        listener = config.inter_broker_listener.name
        self.listener = listener
        self.protocol: str = config["listener.security.protocol.map"].get(listener, listener)
        self.tls: ssl.SSLContext | None = (client_context(config, listener)
                                           if self.protocol in ("SSL", "SASL_SSL") else None)
        self.mechanism: str | None = None
        self._login: Callable[[str], ClientMechanism] | None = None  # the exchange with one host
        if self.protocol.startswith("SASL_"):
            self.mechanism = config["sasl.mechanism.inter.broker.protocol"]
            self._login = _login(config, listener, self.mechanism)

    async def connect(self, host: str, port: int, client_id: str) -> Connection:
        """A connection to a node's inter-broker endpoint, TLS and SASL done."""
        conn = await asyncio.wait_for(Connection.open(host, port, self.tls), CONNECT_TIMEOUT_S)
        conn.client_id = client_id
        try:
            await asyncio.wait_for(self._authenticate(conn), CONNECT_TIMEOUT_S)  # a stopped peer must not hold us
        except BaseException:
            conn.close()
            raise
        return conn

    async def refresh(self, conn: Connection) -> None:
        """Re-authenticates `conn` in place when its SASL session is near its end (KIP-368)."""
        if conn.reauth_at is not None and time.monotonic() >= conn.reauth_at:
            await self._authenticate(conn)

    async def _authenticate(self, conn: Connection) -> None:
        if self._login is None:
            return
        conn.reauth_at = None
        answer = await conn.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": self.mechanism})
        if answer["error_code"] != ErrorCode.NONE:
            raise InterBrokerAuthenticationError(
                f"SaslHandshake for {self.mechanism} on listener {self.listener}: {_name(answer['error_code'])} "
                f"(the other broker enables {', '.join(answer['mechanisms'])})")
        exchange = self._login(conn.host)
        token: bytes | None = exchange.start()
        lifetime_ms = 0
        while token is not None:
            answer = await conn.request(ApiKey.SASL_AUTHENTICATE, SASL_AUTHENTICATE_VERSION, {"auth_bytes": token})
            if answer["error_code"] != ErrorCode.NONE:
                raise InterBrokerAuthenticationError(
                    f"{self.mechanism} on listener {self.listener}: {_name(answer['error_code'])}: "
                    f"{answer['error_message']}")
            lifetime_ms = answer["session_lifetime_ms"]
            try:
                token = exchange.evaluate(answer["auth_bytes"])
            except (AuthenticationFailed, ValueError) as exc:  # ValueError: malformed base64 from the other side
                raise InterBrokerAuthenticationError(f"{self.mechanism} on listener {self.listener}: {exc}") from None
        if lifetime_ms > 0:
            conn.reauth_at = time.monotonic() + lifetime_ms * REAUTH_FRACTION / 1000


def _login(config: ServerConfig, listener: str, mechanism: str) -> Callable[[str], ClientMechanism]:
    """The maker of this broker's client exchanges with a host: username and password (or the
    Kerberos principal and keytab) from the JAAS line of the listener and mechanism
    (ConfigError naming the key when unusable)."""
    if mechanism not in setting(config, listener, "sasl.enabled.mechanisms"):
        raise ConfigError(f"sasl.mechanism.inter.broker.protocol={mechanism} is not in the sasl.enabled.mechanisms "
                          f"of the inter-broker listener {listener}")
    if mechanism == "GSSAPI":
        credentials, service = initiator_credentials(config, listener)
        return lambda host: GssapiClient(credentials, service, host)
    if mechanism != "PLAIN" and mechanism not in SCRAM_MECHANISMS:
        raise ConfigError(f"sasl.mechanism.inter.broker.protocol={mechanism}: pyk brokers authenticate to each other "
                          f"with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI")
    user, password = password_login(config, listener, mechanism)
    if mechanism == "PLAIN":
        return lambda _: PlainClient(user, password)
    return lambda _: ScramClient(mechanism, user, password)


def password_login(config: ServerConfig, listener: str, mechanism: str) -> tuple[str, str]:
    """The username and password this broker logs in with over PLAIN or SCRAM-SHA-*: the options
    of the listener's JAAS line for `mechanism` (ConfigError naming where when missing)."""
    expected = PLAIN_LOGIN_MODULE if mechanism == "PLAIN" else SCRAM_LOGIN_MODULE
    needs = 'username="..." and password="..."'
    options, where = server_login(config, listener, mechanism, expected, needs)
    if "username" not in options or "password" not in options:
        raise ConfigError(f"{where}: the inter-broker {mechanism} login needs {expected} with {needs}")
    return options["username"], options["password"]


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"
