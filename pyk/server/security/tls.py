"""TLS for SSL and SASL_SSL listeners: Python's ssl.SSLObject over memory BIOs on the engine's socket.

Why not asyncio's SSL transport: a connection here works on the raw non-blocking socket with the
loop's reader callback and the engine's senders (pyk/server/connection.py), and a Fetch answer
is partly regions of segment files.  So a TLS connection keeps that shape and only changes its
two ends: `TlsConnection._recv_plain` feeds ciphertext from the socket into the SSLObject and
hands the connection the decrypted bytes; `TlsSender` takes the same response parts as the
engine's senders, encrypts them in bounded chunks (a segment region is read with pread, the one
copy user-space TLS costs) and writes the records with send + the loop's writability callback.

Kernel TLS (pyk/server/security/ktls.py) plugs in at the sender: once the handshake is done and
its last records are on the socket, the session's sending keys go to the kernel (setsockopt
SOL_TLS/TLS_TX) and the connection's sender becomes `KernelTlsSender`, the epoll engine's
(sendmsg writes plaintext bytes, sendfile segment regions, the kernel makes the records), so
fetches under TLS keep the zero-copy path.  Reading stays on the SSLObject (the kernel only
sends): should the session want to send by itself after that (a key update, an alert), the
connection closes, as its records can no longer be interleaved with the kernel's.  A session
the kernel cannot take (its version or suite, the kernel's refusal) stays in user space, one
debug line per connection.

The principal of an SSL connection is its client certificate's subject in RFC 2253 form
(Kafka's DEFAULT ssl.principal.mapping.rules), User:ANONYMOUS without a certificate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from cryptography import x509

from pyk.config import ConfigError, ServerConfig
from pyk.server.connection import ANONYMOUS, Connection, FrameHandler
from pyk.server.engine import EpollSender, SendQueue, Writer, is_bytes
from pyk.server.limits import MemoryPool
from pyk.server.security import ktls
from pyk.server.security.settings import AUDIT, setting

log = logging.getLogger("pyk.server")

_RECV_BYTES = 256 * 1024  # ciphertext taken off the socket per read
_ENCRYPT_BYTES = 256 * 1024  # plaintext encrypted per round: bounds the ciphertext held per connection
# Where ciphertext lands before it is fed to a session: one per process, as a shard's single event
# loop handles one read at a time (the bytes are copied into the session's BIO at once).
_RECV_BUFFER = memoryview(bytearray(_RECV_BYTES))
_TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"required": ssl.CERT_REQUIRED, "requested": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def server_context(config: ServerConfig, listener: str) -> ssl.SSLContext:
    """The listener's TLS settings as an SSLContext (ConfigError naming the key when unusable)."""
    keystore = setting(config, listener, "ssl.keystore.location")
    if not keystore:
        raise ConfigError(f"listener {listener} uses TLS but ssl.keystore.location is not set")
    context = _context(ssl.PROTOCOL_TLS_SERVER, config, listener)
    truststore = setting(config, listener, "ssl.truststore.location")
    client_auth = setting(config, listener, "ssl.client.auth")
    if client_auth != "none" and not truststore:
        raise ConfigError(f"ssl.client.auth={client_auth} on listener {listener} needs ssl.truststore.location")
    context.verify_mode = _CLIENT_AUTH[client_auth]
    return context


def client_context(config: ServerConfig, listener: str) -> ssl.SSLContext:
    """How this broker connects to another's TLS `listener` (the inter-broker one), as Kafka's
    brokers do with that listener's keys: the server is checked against ssl.truststore.location
    (else the system's CAs), its host name too unless ssl.endpoint.identification.algorithm is
    empty; the keystore, when set, is the client certificate (needed by ssl.client.auth=required)."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT, config, listener)
    if not setting(config, listener, "ssl.truststore.location"):
        context.load_default_certs()
    context.check_hostname = setting(config, listener, "ssl.endpoint.identification.algorithm") == "https"
    return context


def _context(protocol: ssl._SSLMethod, config: ServerConfig, listener: str) -> ssl.SSLContext:
    """A context with the listener's TLS versions, keystore and truststore (when set)."""
    context = ssl.SSLContext(protocol)
    versions = sorted(_TLS_VERSIONS[v] for v in setting(config, listener, "ssl.enabled.protocols") if v in _TLS_VERSIONS)
    if not versions:
        raise ConfigError(f"ssl.enabled.protocols of listener {listener} names no TLS version pyk serves "
                          f"({', '.join(_TLS_VERSIONS)})")
    context.minimum_version, context.maximum_version = versions[0], versions[-1]
    keystore = setting(config, listener, "ssl.keystore.location")
    if keystore:
        try:
            context.load_cert_chain(keystore, password=setting(config, listener, "ssl.key.password"))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load ssl.keystore.location {keystore} (a PEM file with the private key and "
                              f"certificate chain; ssl.key.password if the key is encrypted): {exc}") from None
    truststore = setting(config, listener, "ssl.truststore.location")
    if truststore:
        try:
            context.load_verify_locations(truststore)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load ssl.truststore.location {truststore}: {exc}") from None
    return context


def certificate_principal(der: bytes | None) -> str:
    """Kafka's DEFAULT mapping: User:<subject as RFC 2253>; ANONYMOUS without a certificate."""
    if not der:
        return ANONYMOUS
    return "User:" + x509.load_der_x509_certificate(der).subject.rfc4514_string()


class TlsConnection(Connection):
    """A Connection whose bytes pass through a TLS session (see module docstring).

    With a `key_log` (the listener goes to the kernel) it also keeps what moving the session's
    sending to the kernel needs: the client's and server's Hello randoms, read from the first
    bytes each way, and its secrets from the key log until they are installed (then dropped).
    """

    def __init__(self, sock: socket.socket, peer: str, loop: asyncio.AbstractEventLoop, on_frame: FrameHandler,
                 max_request_bytes: int, on_close: Callable[[Connection], None], read_buffer: memoryview,
                 pool: MemoryPool, listener: str, context: ssl.SSLContext, key_log: ktls.KeyLog | None) -> None:
        self.tls_in = ssl.MemoryBIO()
        self.tls_out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.tls_in, self.tls_out, server_side=True)
        self.handshaken = False
        self.kernel_tls = False  # the kernel makes the records: KernelTlsSender writes plaintext
        self._more = False  # the last read filled its buffer: decrypted bytes may be waiting
        self._key_log = key_log
        self._client_hello = b""  # the first bytes received, up to the client random
        self._client_random: bytes | None = None
        self._server_random: bytes | None = None
        self._secrets: dict[str, bytes] = {}
        super().__init__(sock, peer, loop, on_frame, max_request_bytes, on_close, _TlsSenders(self), read_buffer,
                         pool, listener)
        self._recv_into = self._recv_plain

    def _recv_plain(self, view: memoryview) -> int:
        """Decrypted bytes into `view`, like socket.recv_into (BlockingIOError: none yet; 0: closed)."""
        self._more = False
        while True:
            got = 0
            if self.handshaken:
                try:
                    while got < len(view):
                        # read() into a buffer returns a count (typeshed only knows the bytes form)
                        count = cast(int, self.tls.read(len(view) - got, view[got:]))
                        if not count:
                            return got  # the peer's close_notify: 0 closes the connection
                        got += count
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return got
                except ssl.SSLError as exc:
                    self._fail("TLS error", exc)
                    return 0
                if self.tls_out.pending:  # post-handshake messages (key updates)
                    if self.kernel_tls:
                        self.close("the TLS session has records to send but its sending is the kernel's "
                                   "(a key update or alert)", level=logging.WARNING)
                        return 0
                    self._tls_sender.flush()
                if got:
                    self._more = got == len(view)
                    return got
            received = self.sock.recv_into(_RECV_BUFFER)  # BlockingIOError: nothing more now
            if not received:
                return 0
            self.tls_in.write(_RECV_BUFFER[:received])
            if self._key_log is not None and len(self._client_hello) < ktls.HELLO_RANDOM_END:
                self._client_hello += _RECV_BUFFER[: min(received, ktls.HELLO_RANDOM_END)]
                self._client_random = ktls.client_hello_random(self._client_hello)
            if not self.handshaken and not self._handshake():
                if self.closed:
                    return 0
                raise BlockingIOError  # the handshake waits for the client

    def _handshake(self) -> bool:
        """Advances the handshake with what arrived; False while it is not complete (or failed)."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._take_secrets()
            self._tls_sender.flush()
            return False
        except ssl.SSLError as exc:
            self._take_secrets()
            self._tls_sender.flush()  # the alert, if any
            self._fail("TLS handshake failed", exc)
            return False
        self.handshaken = True
        self._take_secrets()
        self._tls_sender.flush()
        self.principal = certificate_principal(self.tls.getpeercert(binary_form=True))
        log.debug("connection %s: %s on listener %s, principal %s", self.peer, self.tls.version(), self.listener,
                  self.principal)
        if self._key_log is not None:
            self._to_kernel()
        return True

    def _take_secrets(self) -> None:
        """Keeps this session's key-log lines of the handshake step just made (the key log holds
        no more than one step's lines: see pyk.server.security.ktls)."""
        if self._key_log is not None:
            self._secrets.update(self._key_log.take(self._client_random))

    def outgoing(self) -> bytes:
        """The records the session wrote (handshake, alerts, application data); the first flight
        starts with the ServerHello, whose random the key block of TLS 1.2 needs (b"": none)."""
        records = self.tls_out.read()
        if self._key_log is not None and self._server_random is None and records:
            self._server_random = ktls.server_hello_random(records) or b""
        return records

    def _to_kernel(self) -> None:
        """Gives the session's sending to the kernel and the connection's responses to a
        KernelTlsSender; or says why this connection stays in user space."""
        secrets, self._secrets = self._secrets, {}
        version, cipher = self.tls.version(), self.tls.cipher()
        suite = cipher[0] if cipher else ""
        what = f"{version} {suite}"
        if not self._tls_sender.idle or self.tls_out.pending:
            log.debug("connection %s: %s stays in user-space TLS: handshake records are still queued",
                      self.peer, what)
            return
        try:
            if self._client_random is None:
                raise ktls.Unsupported("no ClientHello random seen")
            crypto_info = ktls.tx_crypto_info(version, suite, secrets, self._client_random, self._server_random)
            ktls.install(self.sock, crypto_info)
        except ktls.Unsupported as exc:
            log.debug("connection %s: %s stays in user-space TLS: %s", self.peer, what, exc)
            return
        except OSError as exc:
            log.debug("connection %s: %s stays in user-space TLS: the kernel refused its keys: %s", self.peer,
                      what, exc)
            return
        self.kernel_tls = True
        self._sender = KernelTlsSender(self, self.loop)  # the TlsSender is idle: nothing of it to keep
        self.responses = self._sender.responses  # the send times are the new sender's to record
        log.debug("connection %s: %s sent by kernel TLS", self.peer, what)

    def close(self, reason: str | None, level: int = logging.INFO) -> None:
        sender = self._sender
        if isinstance(sender, KernelTlsSender) and not self.closed:
            log.debug("connection %s: kernel TLS sent %d bytes of segment regions with sendfile", self.peer,
                      sender.region_bytes)
        super().close(reason, level)

    def _fail(self, what: str, exc: ssl.SSLError) -> None:
        AUDIT.warning("authentication failed: listener=%s peer=%s %s: %s", self.listener, self.peer, what,
                      exc.reason or exc)
        self.close(None)

    def _buffered(self) -> bool:
        return self._more

    @property
    def _tls_sender(self) -> TlsSender:
        sender = self._sender
        assert isinstance(sender, TlsSender)
        return sender


class TlsSender(SendQueue):
    """Encrypts a connection's response parts and writes the records, in order; at most about
    _ENCRYPT_BYTES of plaintext is encrypted ahead of what the socket took."""

    def __init__(self, conn: TlsConnection) -> None:
        super().__init__(conn)
        self.tls_conn = conn
        self.cipher = b""  # records not yet on the socket, from `cipher_sent` on
        self.cipher_sent = 0
        self.writing = False

    @property
    def idle(self) -> bool:
        return not self.out and not self.cipher

    def progress(self) -> object:
        return len(self.out), self.offset, len(self.cipher), self.cipher_sent

    def send(self, parts: list[Any]) -> None:
        self.queue(parts)
        if not self.writing:
            self._flush()

    def flush(self) -> None:
        """Writes what the TLS session produced by itself (handshake records, alerts)."""
        self._take_records()
        if not self.writing:
            self._flush()

    def _take_records(self) -> None:
        """Moves what the session wrote to its outgoing BIO behind the records not yet sent."""
        records = self.tls_conn.outgoing()
        if not self.cipher:
            self.cipher, self.cipher_sent = records, 0
        elif records:
            self.cipher, self.cipher_sent = self.cipher[self.cipher_sent :] + records, 0

    def _encrypt(self) -> None:
        """Encrypts up to _ENCRYPT_BYTES from the head of the queue in one SSLObject.write."""
        chunks: list[Any] = []
        budget = _ENCRYPT_BYTES
        index, offset = 0, self.offset
        while budget and index < len(self.out):
            head = self.out[index]
            piece: bytes | memoryview
            if is_bytes(head):
                piece = memoryview(head)[offset : offset + budget]
            else:
                piece = os.pread(head.fd, min(head.size - offset, budget), head.position + offset)
                if not piece:
                    raise _Vanished
            chunks.append(piece)
            budget -= len(piece)
            if offset + len(piece) < (len(head) if is_bytes(head) else head.size):
                break
            index, offset = index + 1, 0
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        sent = len(data)
        if sent:
            self.tls_conn.tls.write(data)
        self.consume(sent)
        self._take_records()

    def _flush(self) -> None:
        conn = self.tls_conn
        try:
            while True:
                if self.cipher:
                    self.cipher_sent += conn.sock.send(memoryview(self.cipher)[self.cipher_sent :])
                    if self.cipher_sent < len(self.cipher):
                        break
                    self.cipher, self.cipher_sent = b"", 0
                if not self.out:
                    break
                self._encrypt()
        except (BlockingIOError, InterruptedError):
            pass
        except _Vanished:
            conn.close("segment region vanished during send", level=logging.ERROR)
            return
        except OSError as exc:  # ssl.SSLError included
            conn.close(f"write failed: {exc}")
            return
        want_writer = bool(self.cipher)
        if want_writer != self.writing and not conn.closed:
            self.writing = want_writer
            if want_writer:
                conn.loop.add_writer(conn.fd, self._flush)
            else:
                conn.loop.remove_writer(conn.fd)

    def close(self) -> None:
        if self.writing:
            self.tls_conn.loop.remove_writer(self.tls_conn.fd)
            self.writing = False
        self.clear()
        self.cipher = b""
        self.tls_conn.sock.close()


class KernelTlsSender(EpollSender):
    """The sender of a connection whose records the kernel makes: plaintext bytes with sendmsg,
    segment regions with sendfile (zero-copy), from the loop on either engine.  Not the io_uring
    engine's chains: their linked sendmsg needs MSG_WAITALL (a short send must cut the chain),
    which the kernel's TLS refuses (EOPNOTSUPP, net/tls/tls_sw.c tls_sw_sendmsg); so a region
    not in the page cache is read by sendfile on the loop, as on epoll.  Counts the region
    bytes it was handed (a debug line at close)."""

    def __init__(self, conn: Writer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(conn, loop)
        self.region_bytes = 0

    def send(self, parts: list[Any]) -> None:
        self.region_bytes += sum(part.size for part in parts if not is_bytes(part))
        super().send(parts)


class _Vanished(Exception):
    """A segment region shrank under a send (truncation)."""


class _TlsSenders:
    """The SenderFactory of one TlsConnection: its sender encrypts."""

    def __init__(self, conn: TlsConnection) -> None:
        self.conn = conn

    def sender(self, conn: Writer) -> TlsSender:
        return TlsSender(self.conn)
