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
from pyk.server.security.sasl import SaslGate, SaslSettings
from pyk.server.security.scram import CredentialLookup
from pyk.server.security.tls import TlsConnection, kernel_tls_missing, server_context

log = logging.getLogger("pyk.server")


class ListenerSecurity:
    """A listener's security protocol made concrete: TLS context and SASL gate, or neither."""

    def __init__(self, config: ServerConfig, listener: Listener, dispatch: FrameHandler,
                 credentials: CredentialLookup) -> None:
        self.listener = listener.name
        self.protocol: str = config["listener.security.protocol.map"][listener.name]
        self.tls: ssl.SSLContext | None = (server_context(config, listener.name)
                                           if self.protocol in ("SSL", "SASL_SSL") else None)
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
        return TlsConnection(sock, peer, loop, self.on_frame, max_request_bytes, on_close, read_buffer,
                             pool, self.listener, self.tls)


def check(config: ServerConfig) -> None:
    """Builds every listener's security once, so that a bad key, file or JAAS line stops start-up
    (ConfigError naming the key) before any shard runs, and the client side of the inter-broker
    listener (TLS context, SASL login); says once how TLS is done."""
    tls = [listener.name for listener in config.listeners
           if ListenerSecurity(config, listener, lambda conn, frame: None, lambda user, mechanism: None).tls]
    InterBrokerClient(config)
    if tls:
        missing = kernel_tls_missing()
        log.info("TLS listeners %s: user-space TLS (fetches pread and encrypt); kernel TLS %s", ", ".join(tls),
                 f"is not available here ({missing})" if missing else "is available but not used yet")
