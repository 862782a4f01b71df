"""One client connection: length-prefixed framing, in-order request processing, zero-copy writes.

The connection works on the raw non-blocking socket through the event loop's reader callback
rather than an asyncio transport, because a Fetch response is a mix of encoded bytes and
regions of segment files.  Writing is the I/O engine's (pyk/server/engine.py: sendmsg +
sendfile on epoll, or linked sendmsg / splice SQEs on io_uring), so record bytes never pass
through Python.

Ordering: like Kafka, a connection processes one request at a time and answers in order.
The answers to the frames of one read are handed to the engine together, after the last of them
(one sendmsg for a pipelining producer's whole burst, not one per request).  A
handler that must wait (a long-polling Fetch) returns an awaitable; the connection stops reading
frames until it resolves, which keeps responses ordered without a reorder buffer.

Security (pyk/server/security): a connection knows its listener and its principal; a TLS
listener's connections are a subclass (TlsConnection) that swaps the two ends, `_recv_into`
(decrypted bytes) and the sender (encrypting), and a SASL listener's frame handler is a gate in
front of the dispatcher.  `close_when_sent` answers, then closes (a failed authentication).

Quotas (pyk/server/quotas.py, KIP-219): a throttled client's answer is sent at once, then `mute`
stops reading its requests for the throttle time; what it sent meanwhile waits in the socket.

Failure tiers (STYLE practice 11): a protocol violation closes this connection with one log
line; an unexpected exception in a handler is logged with its traceback and also closes only
this connection.  Nothing here can stop the listener.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import socket
import struct
from collections.abc import Awaitable, Callable
from time import monotonic_ns
from typing import TYPE_CHECKING, Any

from pyk._native import frame_buffer
from pyk.errors import ProtocolViolation
from pyk.server.engine import SenderFactory
from pyk.server.limits import MemoryPool

if TYPE_CHECKING:
    from pyk.server.security.sasl import SaslSession

log = logging.getLogger("pyk.server")

READ_BUFFER_BYTES = 64 * 1024  # the read buffer all connections of one event loop share
_DIRECT_READ_MIN = 16 * 1024  # frames this big skip the read buffer (see _process)
# Frames this big are received into anonymous memory whose pages exist only once written, so a
# connection announcing a large frame costs what it sent, not what it announced (a bytearray is
# zero-filled, all of it resident, at once).  Below it, a bytearray: glibc hands back resident
# heap memory where fresh pages fault in one by one (a 4 MiB frame read 2.7x slower in CPU time,
# bench/micro/test_connection_read.py); clients' requests stay below (1 MB by default), and
# what smaller frames are allocated ahead of their bytes is bounded by queued.max.request.bytes.
_LAZY_FRAME_MIN = 4 * 1024 * 1024
_FRAME_SIZE = struct.Struct(">i")
_LINGER_S = 1.0  # close_when_sent: how long answers may take to leave
# Kafka's KafkaPrincipal of an unauthenticated connection (PLAINTEXT, or SSL without a client certificate).
ANONYMOUS = "User:ANONYMOUS"


# A request frame without its size prefix: a bytearray, or anonymous memory for a large one.
Frame = bytearray | mmap.mmap
# A frame handler returns the response parts, None (no response: acks=0), or an awaitable of those.
FrameResult = list[Any] | None | Awaitable[list[Any] | None]
FrameHandler = Callable[["Connection", Frame], FrameResult]


class Connection:
    """Reads frames from one socket, hands each to `on_frame`, writes the replies in order.

    Owned by the event loop of the process that accepted the socket; not thread-safe.
    """

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        loop: asyncio.AbstractEventLoop,
        on_frame: FrameHandler,
        max_request_bytes: int,
        on_close: Callable[[Connection], None],
        engine: SenderFactory,
        read_buffer: memoryview,
        pool: MemoryPool,
        listener: str = "PLAINTEXT",
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = loop
        self.peer = peer  # "host:port"
        self.client_address = peer.rpartition(":")[0]
        self._on_frame = on_frame
        # Largest frame accepted (socket.request.max.bytes; a SASL listener's smaller
        # sasl.server.max.receive.size until the client authenticated).
        self.max_request_bytes = max_request_bytes
        self._on_close = on_close
        # Reads land in `read_buffer` (READ_BUFFER_BYTES, shared by the loop's connections: one
        # read is handled at a time); the bytes not handled yet, a partial frame or frames queued
        # behind a parked request, stay here between reads.
        self._rbuf = read_buffer
        self._pending = b""
        self._frame: Frame | None = None  # a large frame being received in place
        self._frame_filled = 0
        # queued.max.request.bytes: the bytes reserved in the shard's pool for the large frame
        # at the head (being received, or granted and about to be), and whether it waits for them.
        self._pool = pool
        self._reserved = 0
        self._awaiting_memory = False
        self._busy = False  # a request is waiting (long poll): frames stay queued until it resolves
        self._muted: asyncio.TimerHandle | None = None  # a quota's throttle: nothing is read until it fires
        self._reading = True
        self._draining = False  # close_when_sent: no more frames are read or handled
        self.closed = False
        self.client_id: str | None = None
        self.listener = listener  # the `listeners` name it came in on: Metadata answers with that listener's endpoints
        # Who is on the other end (Kafka's KafkaPrincipal as "User:name"); the security layer
        # (pyk.server.security) sets it after TLS client authentication or SASL.
        self.principal = ANONYMOUS
        self.sasl: SaslSession | None = None  # a SASL listener's authentication state
        self._recv_into: Callable[[memoryview], int] = sock.recv_into  # TLS: decrypted bytes instead
        self.read_ns = 0  # time.monotonic_ns() of the last read: the frames' receive time (metrics)
        # connections.max.idle.ms: when bytes last moved, and the sender's progress the idle sweep
        # last saw (see expire_if_idle).
        self._active_ns = monotonic_ns()
        self._progress: object = None
        self._sender = engine.sender(self)
        # The requests answered whose responses are not written yet: the dispatcher adds each
        # answer, the sender records its send time (pyk._native.RequestStats).
        self.responses = self._sender.responses
        self._held: list[Any] | None = None  # answers held while the frames of one read are handled
        loop.add_reader(self.fd, self._on_readable)

    # Reading ----------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        buf = self._rbuf
        have = len(self._pending)
        try:
            if self._frame is not None:
                received = self._recv_into(memoryview(self._frame)[self._frame_filled :])
            else:
                if have:
                    buf[:have] = self._pending
                received = self._recv_into(buf[have:])  # room: see _update_reading
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"read failed: {exc}")
            return
        if not received:
            self.close(None)
            return
        self.read_ns = monotonic_ns()
        if self._frame is not None:
            self._frame_filled += received
            if self._frame_filled < len(self._frame):
                return
            frame, self._frame = self._frame, None
            self._pool.release(self._reserved)
            self._reserved = 0
            self._handle(frame)  # nothing is kept while a direct frame is received
            self._update_reading()
            return
        end = have + received
        self._held = []
        try:
            start = self._process(buf, 0, end)
        finally:
            self._release()
        self._pending = bytes(buf[start:end])
        self._update_reading()

    def _process_pending(self) -> None:
        """Handles the frames kept between reads (after a parked request resolved)."""
        pending = memoryview(self._pending)
        self._held = []
        try:
            start = self._process(pending, 0, len(pending))
        finally:
            self._release()
        self._pending = self._pending[start:]
        self._update_reading()

    def _process(self, buf: memoryview, start: int, end: int) -> int:
        """Handles the complete frames in buf[start:end]; returns where the unhandled bytes begin
        (a partial frame, or frames behind a request that is now parked)."""
        while not self._busy and self._muted is None and not self._draining and not self.closed and end - start >= 4:
            size = _FRAME_SIZE.unpack_from(buf, start)[0]
            if size < 0 or size > self.max_request_bytes:
                self.close(
                    f"frame size {size} outside [0, {self.max_request_bytes}] (socket.request.max.bytes, or "
                    f"sasl.server.max.receive.size before SASL authentication)", level=logging.WARNING
                )
                return end
            if end - start < 4 + size:
                if size >= _DIRECT_READ_MIN:
                    # A large frame (a produce batch) is received straight into its own
                    # buffer: the read buffer only ever holds its first chunk.  Its bytes are
                    # reserved in the pool first; without room, this waits (not read) for a grant.
                    if not self._reserved:
                        if self._awaiting_memory or not self._pool.reserve(size, self._on_memory_granted):
                            self._awaiting_memory = True
                            break
                        self._reserved = size
                    have = end - start - 4
                    self._frame = frame_buffer(size) if size < _LAZY_FRAME_MIN else mmap.mmap(-1, size)
                    self._frame[:have] = buf[start + 4 : end]
                    self._frame_filled = have
                    return end
                break
            frame = bytearray(buf[start + 4 : start + 4 + size])
            start += 4 + size
            self._handle(frame)
        return start

    def _on_memory_granted(self, size: int) -> None:
        self._awaiting_memory = False
        if self.closed:
            self._pool.release(size)
            return
        self._reserved = size
        self._process_pending()

    def _update_reading(self) -> None:
        # Backpressure: while a request is parked, stop reading once the kept frames fill most of
        # the read buffer; while a large frame waits for pool memory, or while muted (a client
        # quota's throttle), stop reading.  Otherwise what is kept is a partial frame below
        # _DIRECT_READ_MIN, so every read has room.
        self._set_reading(self._muted is None
                          and not (self._awaiting_memory
                                   or (self._busy and len(self._pending) > READ_BUFFER_BYTES - _DIRECT_READ_MIN)))
        if self._reading and self._buffered():
            # Bytes already taken off the socket (TLS records) wake no reader callback.
            self.loop.call_soon(self._read_buffered)

    def _buffered(self) -> bool:
        """Whether received bytes wait outside the socket (a TLS connection's decrypted records)."""
        return False

    def _read_buffered(self) -> None:
        if self._reading and not self.closed:
            self._on_readable()

    def _handle(self, frame: Frame) -> None:
        try:
            result = self._on_frame(self, frame)
        except ProtocolViolation as exc:
            self.close(f"protocol violation: {exc}", level=logging.WARNING)
            return
        except Exception:
            log.exception("connection %s: unexpected error handling a request; closing it", self.peer)
            self.close(None)
            return
        if result is None or isinstance(result, list):
            if result:
                self.send(result)
            return
        self._busy = True
        task = asyncio.ensure_future(result)
        task.add_done_callback(self._on_parked_done)

    def _on_parked_done(self, task: asyncio.Future[Any]) -> None:
        self._busy = False
        if self.closed:
            return
        if task.cancelled():
            self.close("request cancelled")
            return
        exc = task.exception()
        if exc is not None:
            log.error("connection %s: unexpected error in a waiting request; closing it", self.peer, exc_info=exc)
            self.close(None)
            return
        parts = task.result()
        if parts:
            self.send(parts)
        self._process_pending()

    def mute(self, throttle_ms: int) -> None:
        """Reads no request of this client for `throttle_ms` (a quota's throttle time, KIP-219); a
        longer throttle given meanwhile replaces a shorter one."""
        if self.closed:
            return
        due = self.loop.time() + throttle_ms / 1000
        if self._muted is not None:
            if self._muted.when() >= due:
                return
            self._muted.cancel()
        self._muted = self.loop.call_at(due, self._unmute)
        self._set_reading(False)

    def _unmute(self) -> None:
        self._muted = None
        if self.closed:
            return
        if self._busy:
            self._update_reading()
        else:
            self._process_pending()

    def _set_reading(self, on: bool) -> None:
        on = on and not self._draining
        if on == self._reading or self.closed:
            return
        self._reading = on
        if on:
            self.loop.add_reader(self.fd, self._on_readable)
        else:
            self.loop.remove_reader(self.fd)

    # Writing ----------------------------------------------------------------------------------
    def send(self, parts: list[Any]) -> None:
        """Queues a response (bytes and file regions); the engine writes it in order."""
        if self._held is not None:
            self._held += parts
        elif not self.closed:
            self._sender.send(parts)

    def _release(self) -> None:
        """Hands the answers held during one read to the engine at once."""
        held, self._held = self._held, None
        if held and not self.closed:
            self._sender.send(held)

    # Idle expiry ------------------------------------------------------------------------------
    def expire_if_idle(self, now_ns: int, idle_ns: int) -> None:
        """Closes the connection once no byte moved either way for `idle_ns`
        (connections.max.idle.ms), as seen by the shard's periodic sweep: the last read's time,
        and the sender's progress compared with the last sweep's, so the read path pays nothing.
        Waiting on the broker is not idle: for the answer to a request (a parked long-poll Fetch,
        an acks=all Produce) or for pool memory to read a large frame into (else an honest
        producer queued behind stalled connections would be closed with them).  An answer the
        client does not read is idle (Kafka: no bytes either way)."""
        progress = self._sender.progress()
        if self._busy or self._awaiting_memory or progress != self._progress:
            self._progress = progress
            self._active_ns = now_ns
        elif self.read_ns > self._active_ns:
            self._active_ns = self.read_ns
        elif now_ns - self._active_ns >= idle_ns:
            self.close(f"idle for more than connections.max.idle.ms ({idle_ns // 1_000_000} ms)")

    # Closing ----------------------------------------------------------------------------------
    def close_when_sent(self, reason: str, level: int = logging.INFO) -> None:
        """Stops reading and closes once the queued answers are written (a failed authentication is
        answered, then the connection closes), or after _LINGER_S if the peer does not read them."""
        self._draining = True
        self._set_reading(False)
        deadline = self.loop.time() + _LINGER_S

        def check() -> None:
            if self.closed:
                return
            if self._sender.idle or self.loop.time() >= deadline:
                self.close(reason, level)
            else:
                self.loop.call_later(0.01, check)

        self.loop.call_soon(check)

    def close(self, reason: str | None, level: int = logging.INFO) -> None:
        if self.closed:
            return
        self.closed = True
        if self._muted is not None:
            self._muted.cancel()
        if reason:
            log.log(level, "connection %s (client %s) closed: %s", self.peer, self.client_id, reason)
        try:
            self.loop.remove_reader(self.fd)
        except (ValueError, OSError):
            pass
        if self._awaiting_memory:
            self._pool.cancel(self._on_memory_granted)
        self._pool.release(self._reserved)
        self._frame = None
        self._sender.close()  # closes the socket, once no write of the engine still uses its fd
        self._on_close(self)

