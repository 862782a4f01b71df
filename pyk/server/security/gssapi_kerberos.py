"""SASL/GSSAPI (Kerberos V5, RFC 4752): the broker accepts a client's Kerberos ticket for its
service principal, with python-gssapi over MIT Kerberos.

Configured as Kafka is:

    sasl.kerberos.service.name=kafka
    listener.name.sasl_plaintext.gssapi.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule \\
        required useKeyTab=true storeKey=true keyTab="/etc/pyk/broker.keytab" principal="kafka/host@REALM";

or the same Krb5LoginModule entry in the KafkaServer section of a JAAS file (pyk.server.security.jaas).

The exchange: GSS-API context tokens until the context is established (a last token of the
broker's is answered by an empty one), then the broker offers "no security layer" in a wrapped
4-byte message and the client's wrapped answer completes it.  The principal is the client's
Kerberos name under Kafka's DEFAULT sasl.kerberos.principal.to.local.rules: its first component
(alice@REALM and alice/host@REALM are User:alice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyk.config import ConfigError, ServerConfig
from pyk.server.security.jaas import server_login
from pyk.server.security.mechanism import AuthenticationFailed
from pyk.server.security.settings import setting

KRB5_LOGIN_MODULE = "com.sun.security.auth.module.Krb5LoginModule"
_NO_SECURITY_LAYER = 1  # RFC 4752 security layer bitmask: only "none" is offered


@dataclass(frozen=True)
class KerberosAcceptor:
    """The broker's Kerberos identity on one listener: credentials from its keytab."""

    credentials: Any  # gssapi.Credentials (python-gssapi ships no type hints)

    @classmethod
    def build(cls, config: ServerConfig, listener: str) -> KerberosAcceptor:
        options, key = _krb5_options(config, listener)
        service = setting(config, listener, "sasl.kerberos.service.name", "GSSAPI")
        if not service or options["principal"].split("/")[0].split("@")[0] != service:
            raise ConfigError(f"sasl.kerberos.service.name ({service}) must be the first component of the "
                              f"principal {options['principal']} in {key}")
        try:
            import gssapi
        except ImportError:
            raise ConfigError("GSSAPI needs the python-gssapi package (pip install 'pyk[kerberos]')") from None
        try:
            name = gssapi.Name(options["principal"], gssapi.NameType.kerberos_principal)
            credentials = gssapi.Credentials(name=name, usage="accept", store={"keytab": options["keyTab"]})
        except gssapi.exceptions.GSSError as exc:
            raise ConfigError(f"{key}: cannot use {options['principal']} from keytab {options['keyTab']}: "
                              f"{exc.gen_message()}") from None
        return cls(credentials)


def _krb5_options(config: ServerConfig, listener: str) -> tuple[dict[str, str], str]:
    """(options, where from) of the listener's Krb5LoginModule entry (keyTab and principal required)."""
    needs = 'keyTab="..." and principal="..."'
    options, where = server_login(config, listener, "GSSAPI", KRB5_LOGIN_MODULE, needs)
    if "keyTab" not in options or "principal" not in options:
        raise ConfigError(f"{where}: GSSAPI needs {KRB5_LOGIN_MODULE} with {needs}")
    return options, where


class GssapiServer:
    """One GSSAPI exchange (see module docstring)."""

    mechanism = "GSSAPI"

    def __init__(self, acceptor: KerberosAcceptor) -> None:
        import gssapi

        self._gssapi = gssapi
        self._context = gssapi.SecurityContext(creds=acceptor.credentials, usage="accept")
        self._state = "context"  # then "empty" (our last context token awaits an empty answer), "layer"
        self.complete = False
        self.principal = ""
        self.expires_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        try:
            if self._state == "context":
                answer: bytes = self._context.step(token) or b""
                if not self._context.complete:
                    return answer
                if answer:
                    self._state = "empty"
                    return answer
                return self._offer_layer()
            if self._state == "empty":
                return self._offer_layer()
            return self._accept_layer(token)
        except self._gssapi.exceptions.GSSError as exc:
            raise AuthenticationFailed(f"GSSAPI: {exc.gen_message()}") from None

    def _offer_layer(self) -> bytes:
        self._state = "layer"
        message: bytes = self._context.wrap(bytes([_NO_SECURITY_LAYER, 0, 0, 0]), False).message
        return message

    def _accept_layer(self, token: bytes) -> bytes:
        reply = self._context.unwrap(token).message
        user = str(self._context.initiator_name)
        if len(reply) < 4 or not reply[0] & _NO_SECURITY_LAYER:
            raise AuthenticationFailed("GSSAPI: the client did not accept 'no security layer'", user)
        self.principal = "User:" + user.split("@")[0].split("/")[0]
        self.complete = True
        return b""


class GssapiClient:
    """The client side of one GSSAPI exchange (a broker authenticating to another with its own
    keytab principal): context tokens until established (answering the acceptor's last token
    with an empty one), then the acceptor's wrapped security-layer offer is answered with a
    wrapped "no security layer" (RFC 4752 section 3.1).  The target is
    `<sasl.kerberos.service.name>@<the other broker's registered host>`, as Kafka's clients name it."""

    mechanism = "GSSAPI"

    def __init__(self, credentials: Any, service: str, host: str) -> None:
        import gssapi

        self._gssapi = gssapi
        target = gssapi.Name(f"{service}@{host}", gssapi.NameType.hostbased_service)
        self._context = gssapi.SecurityContext(name=target, creds=credentials, usage="initiate")
        self._layer_done = False

    def start(self) -> bytes:
        try:
            token: bytes = self._context.step() or b""
        except self._gssapi.exceptions.GSSError as exc:
            raise AuthenticationFailed(f"GSSAPI: {exc.gen_message()}") from None
        return token

    def evaluate(self, challenge: bytes) -> bytes | None:
        try:
            if not self._context.complete:
                answer: bytes = self._context.step(challenge) or b""
                return answer
            if self._layer_done:
                return None  # the acceptor's empty last answer
            offer = self._context.unwrap(challenge).message
            if len(offer) < 4 or not offer[0] & _NO_SECURITY_LAYER:
                raise AuthenticationFailed("GSSAPI: the broker offered no 'no security layer'")
            self._layer_done = True
            reply: bytes = self._context.wrap(bytes([_NO_SECURITY_LAYER, 0, 0, 0]), False).message
            return reply
        except self._gssapi.exceptions.GSSError as exc:
            raise AuthenticationFailed(f"GSSAPI: {exc.gen_message()}") from None


def initiator_credentials(config: ServerConfig, listener: str) -> tuple[Any, str]:
    """(credentials, service name) of this broker as a Kerberos client on `listener`: the
    principal and keytab of the listener's Krb5LoginModule line (the same the listener accepts
    with), held in a memory ccache."""
    options, key = _krb5_options(config, listener)
    service = setting(config, listener, "sasl.kerberos.service.name", "GSSAPI")
    if not service:
        raise ConfigError(f"GSSAPI between brokers needs sasl.kerberos.service.name (listener {listener})")
    try:
        import gssapi
    except ImportError:
        raise ConfigError("GSSAPI needs the python-gssapi package (pip install 'pyk[kerberos]')") from None
    try:
        name = gssapi.Name(options["principal"], gssapi.NameType.kerberos_principal)
        credentials = gssapi.Credentials(name=name, usage="initiate", store={
            "client_keytab": options["keyTab"], "ccache": f"MEMORY:pyk-inter-broker-{listener.lower()}"})
    except gssapi.exceptions.GSSError as exc:
        raise ConfigError(f"{key}: cannot log in as {options['principal']} with keytab {options['keyTab']}: "
                          f"{exc.gen_message()}") from None
    return credentials, service
