"""Per listener: which Connection class and frame handler its accepted sockets get."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from pyk.config import Listener, ServerConfig
from pyk.server.connection import Connection, FrameHandler
from pyk.server.engine import SenderFactory
from pyk.server.limits import MemoryPool
from pyk.server.security.inter_broker import InterBrokerClient
from pyk.server.security.ktls import KeyLog, kernel_tls_missing
from pyk.server.security.sasl import SaslGate, SaslSettings
from pyk.server.security.scram import CredentialLookup
from pyk.server.security.settings import setting
from pyk.server.security.tls import TlsConnection, server_context

log = logging.getLogger("pyk.server")


class ListenerSecurity:
    """A listener's security protocol made concrete: TLS context and SASL gate, or neither.

    A TLS listener whose sending goes to the kernel (`kernel_tls`: ssl.kernel.tls.enable and a
    kernel with TLS) issues no TLS 1.3 session tickets (they would be records the server sends
    under the application key before the kernel takes it over) and refuses TLS 1.2
    renegotiation; its key log (pyk.server.security.ktls) is made with the first connection, so
    only the shard that serves the listener holds one.
    """

    def __init__(self, config: ServerConfig, listener: Listener, dispatch: FrameHandler,
                 credentials: CredentialLookup) -> None:
        self.listener = listener.name
        self.protocol: str = config["listener.security.protocol.map"][listener.name]
        self.tls: ssl.SSLContext | None = (server_context(config, listener.name)
                                           if self.protocol in ("SSL", "SASL_SSL") else None)
        self.kernel_tls = (self.tls is not None and setting(config, listener.name, "ssl.kernel.tls.enable")
                           and kernel_tls_missing() is None)
        if self.tls is not None and self.kernel_tls:
            self.tls.num_tickets = 0
            self.tls.options |= ssl.OP_NO_RENEGOTIATION
        self._key_log: KeyLog | None = None
        self.on_frame = dispatch
        self.max_receive: int | None = None  # the frame limit of a SASL listener's unauthenticated connections
        if self.protocol.startswith("SASL_"):
            sasl = SaslSettings.build(config, listener.name)
            self.on_frame = SaslGate(sasl, dispatch, credentials).on_frame
            self.max_receive = min(sasl.max_receive, sasl.max_request)

    def connection(self, sock: socket.socket, peer: str, loop: asyncio.AbstractEventLoop, max_request_bytes: int,
                   on_close: Callable[[Connection], None], engine: SenderFactory,
                   read_buffer: memoryview, pool: MemoryPool) -> Connection:
        if self.max_receive is not None:
            max_request_bytes = self.max_receive  # until SASL authentication (Kafka's sasl.server.max.receive.size)
        if self.tls is None:
            return Connection(sock, peer, loop, self.on_frame, max_request_bytes, on_close, engine, read_buffer,
                              pool, self.listener)
        if self.kernel_tls and self._key_log is None:
            self._key_log = KeyLog(self.tls)
        return TlsConnection(sock, peer, loop, self.on_frame, max_request_bytes, on_close, read_buffer,
                             pool, self.listener, self.tls, self._key_log)


def check(config: ServerConfig) -> None:
    """Builds every listener's security once, so that a bad key, file or JAAS line stops start-up
    (ConfigError naming the key) before any shard runs, and the client side of the inter-broker
    listener (TLS context, SASL login); says once how TLS is done."""
    built = [ListenerSecurity(config, listener, lambda conn, frame: None, lambda user, mechanism: None)
             for listener in config.listeners]
    InterBrokerClient(config)
    kernel = [security.listener for security in built if security.kernel_tls]
    user = [security.listener for security in built if security.tls is not None and not security.kernel_tls]
    if kernel:
        log.info("TLS listeners %s: kernel TLS (fetches zero-copy)", ", ".join(kernel))
    if user:
        missing = kernel_tls_missing()
        log.info("TLS listeners %s: user-space TLS (fetches pread and encrypt); kernel TLS %s", ", ".join(user),
                 f"is not available here ({missing})" if missing else "is turned off (ssl.kernel.tls.enable=false)")
