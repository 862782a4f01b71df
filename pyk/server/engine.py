"""I/O engines: how a shard writes responses to its sockets and makes group commits durable.

The broker key `io.engine` picks one per shard process:

* `epoll`: the event loop's readiness callbacks.  Bytes go out with `sendmsg` (one gathered
  write for a run of parts), segment regions with `os.sendfile`, straight from the caller's
  stack; a group commit's fdatasyncs run on one background thread.
* `io_uring`: a `pyk._native.Ring` (liburing).  The head of an idle connection's queue goes
  out with `sendmsg` / `sendfile` from the loop, as on epoll, while the socket has room and
  the page cache holds the region (an SQE costs more than the syscall it saves, and a spliced
  region two io-wq hand-offs per pipe-full); a full socket waits for a `poll` on the ring,
  then the loop sends again.  A region that needs the disk becomes one chain of linked SQEs,
  so a large region's disk read never blocks the loop: `sendmsg` for runs of bytes,
  `splice` file -> pipe -> socket for segment regions (io_uring has no sendfile; the pipe is
  the connection's, sized with F_SETPIPE_SZ), a `poll` for writability in front when the
  socket was full.  Every SQE
  prepared during one event-loop turn goes to the kernel with one `io_uring_enter`; the ring's
  eventfd wakes the loop, which reaps the completions in bulk.  A group commit is a batch of
  fsync SQEs on the same ring.
* `auto`: AUTO_PREFERENCE where it works, else epoll, said in one log line (io_uring can be
  missing: old kernel, seccomp, kernel.io_uring_disabled).

Record bytes never pass through Python in either engine.  Receiving stays on the event loop's
reader callback for both (pyk/server/connection.py).

Both engines are owned by the shard's event loop and are not thread-safe; the epoll engine's
flusher thread only ever calls fdatasync on descriptors the loop keeps open until it is done.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import mmap
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.server.metrics import Log2Histogram

if TYPE_CHECKING:
    from pyk.log import PartitionLog

log = logging.getLogger("pyk.server")

ENGINES = ("auto", "io_uring", "epoll")
# What `auto` picks where both work: the faster one measured side by side (docs/performance.md,
# Session 7: io_uring level with or ahead of epoll on every kbench row).
AUTO_PREFERENCE = "io_uring"
DISABLE_ENV = "PYK_DISABLE_IO_URING"  # =1: behave as if io_uring were forbidden (tests, seccomp drills)

_SENDMSG_MAX_PARTS = 64  # below IOV_MAX; a gathered write of a response's header parts
_SENDFILE_CHUNK = 1 << 30
_RING_ENTRIES = 256
_CHAIN_MAX_SQES = 32  # SQEs of one connection's chain: bounds the work one socket queues at once
_PIPE_SIZE = 1 << 20  # F_SETPIPE_SZ of a connection's splice pipe (the default pipe-max-size)
# io_uring: file regions up to this size go out from the loop without asking the page cache
# (the check is a syscall; a small region's disk read, if any, is short).
_CACHE_CHECK_MIN = 64 * 1024


class Sendable(Protocol):
    """A region of an open file sent without copying (pyk.log.FileSlice; size > 0)."""

    fd: int
    position: int
    size: int


class Writer(Protocol):
    """What an engine needs from a connection: its socket and a way to close it on failure."""

    sock: socket.socket
    fd: int
    peer: str

    def close(self, reason: str | None, level: int = logging.INFO) -> None: ...


class Sender(Protocol):
    """One connection's writer: response parts in, bytes out in order."""

    @property
    def idle(self) -> bool:
        """Nothing queued or in flight: every part handed over is on the socket."""
        ...

    def progress(self) -> object:
        """A value that changes as bytes leave (the connection's idle sweep compares it)."""
        ...

    @property
    def responses(self) -> _native.InflightResponses:
        """The answered requests whose responses it was or will be handed (metrics)."""
        ...

    def send(self, parts: list[Any]) -> None: ...

    def close(self) -> None: ...


class SenderFactory(Protocol):
    """What a connection gets its Sender from: the shard's engine, or a TLS listener's wrapper of
    it (pyk.server.security.tls)."""

    def sender(self, conn: Writer) -> Sender: ...


class EngineUnavailable(OSError):
    """io.engine=io_uring where io_uring cannot be used (an OS condition: ENOSYS, EPERM);
    start-up stops with this message."""


def io_uring_unavailable() -> str | None:
    """None if io_uring works here with every op the engine needs, else why not."""
    if os.environ.get(DISABLE_ENV) == "1":
        return f"disabled by {DISABLE_ENV}=1"
    reason: str | None = _native.uring_probe()
    return reason


def resolve(configured: str, announce: bool = False) -> str:
    """The engine `configured` (an io.engine value) means here: raises EngineUnavailable for an
    io_uring that cannot work; `auto` falls back to epoll, with one log line when `announce`
    (the orchestrator announces, the shards resolve quietly to the same answer)."""
    if configured == "epoll" or (configured == "auto" and AUTO_PREFERENCE == "epoll"):
        return "epoll"
    reason = io_uring_unavailable()
    if reason is None:
        return "io_uring"
    if configured == "io_uring":
        raise EngineUnavailable(f"io.engine=io_uring but io_uring is unavailable: {reason}")
    if announce:
        log.warning("io.engine=auto: io_uring is unavailable (%s); using epoll", reason)
    return "epoll"


def is_bytes(part: Any) -> bool:
    return isinstance(part, (bytes, bytearray, memoryview))


def part_size(part: bytes | bytearray | memoryview | Sendable) -> int:
    return len(part) if isinstance(part, (bytes, bytearray, memoryview)) else int(part.size)


class SendQueue:
    """A connection's response parts not yet on the socket: bytes-like parts and file regions,
    in order, `offset` bytes of the head already sent.

    Its parts are counted as they are queued and as they are written, so that `responses` learns
    which responses are out (their send time) with one integer comparison per write: `due` is
    the written-part count at which the next one is done.
    """

    def __init__(self, conn: Writer) -> None:
        self.conn = conn
        self.out: deque[Any] = deque()
        self.offset = 0
        self.responses = _native.InflightResponses()
        self.queued_parts = 0
        self.written_parts = 0
        self.due = self.responses.handed(0)  # nothing handed: never

    def queue(self, parts: list[Any]) -> None:
        """Appends the parts of the responses answered since the last call."""
        if parts:
            self.out.extend(parts)
            self.queued_parts += len(parts)
            self.due = self.responses.handed(self.queued_parts)

    def clear(self) -> None:
        """Drops what is not written: the connection closes."""
        self.out.clear()
        self.responses.close()

    @property
    def idle(self) -> bool:
        return not self.out

    def progress(self) -> object:
        return len(self.out), self.offset

    def consume(self, sent: int) -> None:
        """Drops `sent` bytes from the front of the queue."""
        out = self.out
        written = self.written_parts
        while sent and out:
            left = part_size(out[0]) - self.offset
            if sent >= left:
                sent -= left
                out.popleft()
                written += 1
                self.offset = 0
            else:
                self.offset += sent
                sent = 0
        while out and is_bytes(out[0]) and len(out[0]) == 0:
            out.popleft()
            written += 1
        self.written_parts = written
        if written >= self.due:
            self.due = self.responses.written(written)

    def send_bytes(self) -> bool:
        """One sendmsg of the run of bytes-like parts at the head, from the caller's stack;
        True if all of it went.  Raises what sendmsg raises (BlockingIOError: the socket is full)."""
        views = [memoryview(p) for p in self.bytes_run(0, _SENDMSG_MAX_PARTS)]
        views[0] = views[0][self.offset :]
        sent = self.conn.sock.sendmsg(views)
        self.consume(sent)
        return sent == sum(v.nbytes for v in views)

    def send_region(self) -> int:
        """One sendfile of (the rest of) the file region at the head: the bytes of it still to
        send (0: all went), or -1 when the file no longer holds it, which closes the connection.
        Raises what sendfile raises."""
        head: Sendable = self.out[0]
        remaining = head.size - self.offset
        sent = os.sendfile(self.conn.fd, head.fd, head.position + self.offset, min(remaining, _SENDFILE_CHUNK))
        if sent == 0:
            # The file shrank under us (truncation): the frame can't be completed.
            self.conn.close("segment region vanished during send", level=logging.ERROR)
            return -1
        self.consume(sent)
        return remaining - sent

    def bytes_run(self, start: int, limit: int) -> list[Any]:
        """The run of bytes-like parts from index `start`, up to `limit` parts."""
        run = []
        for i in range(start, min(len(self.out), start + limit)):
            part = self.out[i]
            if not is_bytes(part):
                break
            run.append(part)
        return run


# epoll ------------------------------------------------------------------------------------------
class EpollSender(SendQueue):
    """Writes as much as the socket takes at once, then waits for writability (loop.add_writer)."""

    def __init__(self, conn: Writer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(conn)
        self.loop = loop
        self.writing = False  # registered for writability

    def send(self, parts: list[Any]) -> None:
        self.queue(parts)
        if not self.writing:
            self._flush()

    def _flush(self) -> None:
        out = self.out
        try:
            while out:
                head = out[0]
                if is_bytes(head):
                    if not self.send_bytes():
                        break
                else:
                    left = self.send_region()
                    if left < 0:
                        return
                    if left:
                        break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self.conn.close(f"write failed: {exc}")
            return
        want_writer = bool(out)
        if want_writer != self.writing:
            self.writing = want_writer
            if want_writer:
                self.loop.add_writer(self.conn.fd, self._flush)
            else:
                self.loop.remove_writer(self.conn.fd)

    def close(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.conn.fd)
            self.writing = False
        self.clear()
        self.conn.sock.close()


class EpollEngine:
    """Readiness-based sends; group-commit fdatasyncs on `flusher`, the group-commit thread of
    the shard's LogIO (pyk.log.io), which the LogManager owns and stops after the logs close."""

    name = "epoll"

    def __init__(self, loop: asyncio.AbstractEventLoop, flusher: Executor) -> None:
        self.loop = loop
        self._flusher = flusher

    def sender(self, conn: Writer) -> EpollSender:
        return EpollSender(conn, self.loop)

    def sync(self, fds: list[int], directories: list[str]) -> asyncio.Future[None]:
        return self.loop.run_in_executor(self._flusher, _sync_all, fds, directories)

    def close(self) -> None:
        """Nothing of its own to stop: the flusher belongs to the LogManager."""


def _sync_all(fds: list[int], directories: list[str]) -> None:
    for fd in fds:
        os.fdatasync(fd)
    for path in directories:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# io_uring ---------------------------------------------------------------------------------------
_SEND, _FILL, _DRAIN, _POLL = range(4)  # op kinds of a connection's chain


class UringSender(SendQueue):
    """One connection's sends as chains of linked SQEs; one chain in flight at a time.

    Invariants: `staged` bytes of the head part (a file region) sit in the pipe, read from the
    file but not yet on the socket; the next chain starts by draining them.  A chain's ops run
    in order and a short or failed op cancels the rest (-ECANCELED), so the bytes that reached
    the socket are always a prefix of the queue: completions just add up.
    """

    def __init__(self, conn: Writer, engine: UringEngine) -> None:
        super().__init__(conn)
        self.engine = engine
        self.staged = 0
        self.inflight = 0  # ops of the current chain not completed yet
        self.wait_writable = False  # the last chain stopped on a full socket
        self.pipe: tuple[int, int] | None = None  # (read end, write end), made at the first file region
        self.pipe_chunk = 0  # bytes one splice into the empty pipe always takes whole
        self.closing = False

    @property
    def idle(self) -> bool:
        return not self.out and not self.inflight

    def send(self, parts: list[Any]) -> None:
        self.queue(parts)
        if self.inflight:
            return
        if not self.wait_writable and not self.staged:
            self._send_inline()
        if self.out and not self.closing:
            self._start_chain()

    def _send_inline(self) -> None:
        """Writes the head of the queue from the loop while the socket has room: bytes with
        sendmsg, and file regions the page cache holds with sendfile.  A region that needs the
        disk is the ring's (spliced by its io-wq workers, so the loop never waits for a disk
        read), and so is what a full socket leaves (behind a poll).  A produce answer is a few
        dozen bytes: as an SQE it costs a token, a completion callback and an eventfd wake-up
        in Python; a cached region spliced by the ring costs two io-wq hand-offs per pipe-full,
        where one sendfile copies what the socket has room for.  Both made the engine slower
        than epoll (docs/performance.md, Sessions 6 and 7)."""
        out = self.out
        try:
            while out:
                if is_bytes(out[0]):
                    if not self.send_bytes():
                        self.wait_writable = True  # the chain for the rest starts with a poll
                        return
                elif self._cached_head():
                    left = self.send_region()
                    if left:
                        self.wait_writable = left > 0
                        return
                else:
                    return
        except (BlockingIOError, InterruptedError):
            self.wait_writable = True
        except OSError as exc:
            self.conn.close(f"write failed: {exc}")

    def _cached_head(self) -> bool:
        """Whether the file region at the head can go out from the loop: small, or every page
        of what is left of it in the page cache (cachestat(2); without it, the ring's)."""
        head = self.out[0]
        left = head.size - self.offset
        if left <= _CACHE_CHECK_MIN:
            return True
        position = head.position + self.offset
        page = mmap.PAGESIZE
        pages = (position + left + page - 1) // page - position // page
        try:
            return bool(_native.cached_pages(head.fd, position, left) >= pages)
        except OSError:
            return False

    def _start_chain(self) -> None:
        ring = self.engine.ring
        ring.reserve(_CHAIN_MAX_SQES)
        chain: list[tuple[int, Any]] = []  # (kind, argument) before linking
        if self.wait_writable:
            chain.append((_POLL, None))
            self.wait_writable = False
            if not self.staged:
                # Only the poll: once the socket has room, the loop sends what it can and the
                # ring gets a region that needs the disk (on_complete -> send).
                self.engine.queue_chain(self, chain)
                self.inflight = 1
                return
        if self.staged:
            chain.append((_DRAIN, self.staged))
        else:
            index, offset = 0, self.offset
            while index < len(self.out) and len(chain) < _CHAIN_MAX_SQES - 1:
                head = self.out[index]
                if is_bytes(head):
                    run = self.bytes_run(index, _SENDMSG_MAX_PARTS)
                    chain.append((_SEND, (run, offset)))
                    index += len(run)
                    offset = 0
                    continue
                if self.pipe is None and not self._open_pipe():
                    return
                position = head.position + offset
                end = head.position + head.size
                while position < end and len(chain) < _CHAIN_MAX_SQES - 1:
                    chunk = min(end - position, self.pipe_chunk)
                    chain.append((_FILL, (head.fd, position, chunk)))
                    chain.append((_DRAIN, chunk))
                    position += chunk
                if position < end:
                    break  # this region continues in the next chain
                index += 1
                offset = 0
        self.engine.queue_chain(self, chain)
        self.inflight = len(chain)

    def _open_pipe(self) -> bool:
        try:
            r, w = os.pipe2(os.O_CLOEXEC)
        except OSError as exc:
            self.conn.close(f"cannot create the splice pipe: {exc}", level=logging.ERROR)
            return False
        try:
            size = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            # Over fs.pipe-user-pages-soft: keep the default size, smaller chunks.
            size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        # A pipe holds size / page-size page references: a region that does not start on a page
        # boundary spans one page more than its length, so one page less always fits whole
        # (a short fill costs two extra trips through the loop).
        self.pipe_chunk = size - mmap.PAGESIZE
        self.pipe = (r, w)
        return True

    def on_complete(self, kind: int, expected: int, res: int) -> None:
        """One op of the chain finished with `res` (bytes, or -errno)."""
        self.inflight -= 1
        if res == -errno.ECANCELED or self.closing:
            pass
        elif kind == _FILL:
            if res <= 0:
                reason = "segment region vanished during send" if res == 0 else f"splice from a segment failed: {os.strerror(-res)}"
                self.conn.close(reason, level=logging.ERROR)
            else:
                self.staged += res
        elif kind != _POLL:
            # A send or a drain of the pipe.  MSG_WAITALL does not stop a linked sendmsg issued
            # from an io-wq worker from returning short or EAGAIN on a full socket: either way
            # the chain is cut there and the next one waits for room first.
            if res == -errno.EAGAIN:
                self.wait_writable = True
            elif res < 0:
                self.conn.close(f"write failed: {os.strerror(-res)}")
            else:
                if kind == _DRAIN:
                    self.staged -= res
                self.consume(res)
                if res < expected:
                    self.wait_writable = True
        if self.inflight:
            return
        if self.closing:
            self._release()
        elif self.out:
            self.send([])  # from the loop what it can (the socket has room unless a send said not), then the ring

    def close(self) -> None:
        self.clear()
        self.closing = True
        if self.inflight:
            # Ops still hold the socket's fd number: fail them fast and close the fd only once
            # the last completion is in, so a new connection reusing the number is never hit.
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._release()

    def _release(self) -> None:
        self.conn.sock.close()
        if self.pipe is not None:
            os.close(self.pipe[0])
            os.close(self.pipe[1])
            self.pipe = None


class UringEngine:
    """The shard's io_uring: sends of every connection and group-commit fsyncs.

    Each prepared op gets a token; `_ops` maps it to its completion handler until reaped.
    Submission is batched: the first op prepared in a loop turn schedules one submit() for
    the end of that turn.
    """

    name = "io_uring"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ring = _native.Ring(_RING_ENTRIES)
        self._ops: dict[int, Callable[[int], None]] = {}
        self._next_token = 0
        self._submit_scheduled = False
        self._closed = False
        loop.add_reader(self.ring.eventfd, self._on_completions)

    def sender(self, conn: Writer) -> UringSender:
        return UringSender(conn, self)

    def _token(self, on_complete: Callable[[int], None]) -> int:
        self._next_token += 1
        self._ops[self._next_token] = on_complete
        return self._next_token

    def _schedule_submit(self) -> None:
        if not self._submit_scheduled:
            self._submit_scheduled = True
            self.loop.call_soon(self._submit)

    def _submit(self) -> None:
        self._submit_scheduled = False
        if self.ring.queued and not self._closed:
            self.ring.submit()

    def queue_chain(self, sender: UringSender, chain: list[tuple[int, Any]]) -> None:
        """Prepares a connection's ops as one linked chain (see UringSender)."""
        ring = self.ring
        fd = sender.conn.fd
        last = len(chain) - 1
        for i, (kind, arg) in enumerate(chain):
            link = i < last
            if kind == _SEND:
                parts, offset = arg
                expected = sum(len(p) for p in parts) - offset
                ring.sendmsg(fd, parts, offset, self._token(_bind(sender.on_complete, kind, expected)), link)
            elif kind == _FILL:
                file_fd, position, expected = arg
                assert sender.pipe is not None
                ring.splice(file_fd, position, sender.pipe[1], expected, self._token(_bind(sender.on_complete, kind, expected)), link)
            elif kind == _DRAIN:
                assert sender.pipe is not None
                ring.splice(sender.pipe[0], -1, fd, arg, self._token(_bind(sender.on_complete, kind, arg)), link, more=link)
            else:
                ring.poll_out(fd, self._token(_bind(sender.on_complete, kind, 0)), link)
        self._schedule_submit()

    def sync(self, fds: list[int], directories: list[str]) -> asyncio.Future[None]:
        """fdatasync of every fd (and fsync of every directory) as one batch of SQEs; the future
        completes when all are done, with the first error if any failed."""
        done: asyncio.Future[None] = self.loop.create_future()
        dir_fds = [os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in directories]
        targets = [(fd, True) for fd in fds] + [(fd, False) for fd in dir_fds]
        left = len(targets)
        failure: list[int] = []

        def on_complete(res: int) -> None:
            nonlocal left
            left -= 1
            if res < 0:
                failure.append(res)
            if left:
                return
            for dir_fd in dir_fds:
                os.close(dir_fd)
            if done.done():
                return
            if failure:
                code = -failure[0]
                done.set_exception(OSError(code, f"fdatasync failed: {os.strerror(code)}"))
            else:
                done.set_result(None)

        if not targets:
            done.set_result(None)
            return done
        for fd, datasync in targets:
            self.ring.reserve(1)
            self.ring.fsync(fd, self._token(on_complete), datasync=datasync)
        self._schedule_submit()
        return done

    def _on_completions(self) -> None:
        ops = self._ops
        for token, res in self.ring.reap():
            handler = ops.pop(token)
            try:
                handler(res)
            except Exception:
                log.exception("io_uring completion handler failed")

    def close(self) -> None:
        """At shutdown, after the connections: what is still in flight is abandoned."""
        self._closed = True
        self.loop.remove_reader(self.ring.eventfd)
        self.ring.close()


def _bind(handler: Callable[[int, int, int], None], kind: int, expected: int) -> Callable[[int], None]:
    return lambda res: handler(kind, expected, res)


Engine = EpollEngine | UringEngine


def create(name: str, loop: asyncio.AbstractEventLoop, flusher: Executor) -> Engine:
    """The engine for a resolved io.engine value ("epoll" or "io_uring"); `flusher` runs the
    epoll engine's group-commit syncs (the io_uring engine syncs on its ring)."""
    return UringEngine(loop) if name == "io_uring" else EpollEngine(loop, flusher)


# Group commit -----------------------------------------------------------------------------------
class GroupCommit:
    """Flushes for the flush.messages policy, shared by every request waiting on them.

    An append that reaches its log's flush.messages calls `schedule(log)` instead of syncing in
    line; a produce request then awaits `waiter(log)`.  A round takes every scheduled log,
    fdatasyncs their unflushed segment files through the engine (thread or ring) and completes
    every waiter of the round at once, so N producers waiting together cost one fdatasync per
    dirty segment instead of N.  Appends made while a round runs go to the next round, which
    starts when it ends: a waiter's data was written before its round began, so the round's
    fdatasync covers it.  Durability is Kafka's: with acks=1/all and flush.messages=1 the answer
    leaves only after its batch is on disk.

    Owned by the shard's event loop; not thread-safe.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, engine: Engine) -> None:
        self.loop = loop
        self.engine = engine
        # The logs whose flush the next round makes; public so that a produce request skips
        # the waiter() calls with one attribute load while it is empty (no flush policy set).
        self.scheduled: set[PartitionLog] = set()
        self._round: set[PartitionLog] = set()  # the logs of the round running
        self._next: asyncio.Future[None] | None = None  # completes with the next round
        self._start_pending = False
        self._running = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.rounds = 0  # flush rounds run
        self.fdatasyncs = 0  # files synced by those rounds
        self.waiters = 0  # requests that waited for a round
        self.waiting = 0  # requests waiting now (Kafka's Produce purgatory size)
        self._round_waiters = 0  # of which in the running round
        self.sync_latency = Log2Histogram()  # a round's fsyncs (Kafka's LogFlushRateAndTimeMs)
        self._round_started = 0

    def schedule(self, plog: PartitionLog) -> None:
        self.scheduled.add(plog)
        self._idle.clear()
        if not self._running and not self._start_pending:
            self._start_pending = True
            self.loop.call_soon(self._start_round)

    def waiter(self, plog: PartitionLog) -> asyncio.Future[None] | None:
        """What a request that appended to `plog` must await before answering (None: nothing,
        the flush policy did not ask for a flush)."""
        if plog not in self.scheduled:
            return None
        if self._next is None:
            self._next = self.loop.create_future()
        self.waiters += 1
        self.waiting += 1
        return self._next

    def _start_round(self) -> None:
        self._start_pending = False
        if self._running or not self.scheduled:
            return
        logs, self.scheduled = list(self.scheduled), set()
        self._round = set(logs)
        waiters, self._next = self._next, None
        self._round_waiters, self._round_started = self.waiting, time.monotonic_ns()
        self._running = True
        fds: list[int] = []
        directories: list[str] = []
        works = []
        for plog in logs:
            work = plog.begin_group_flush()
            works.append((plog, work))
            fds += work.fds
            if work.directory is not None:
                directories.append(work.directory)
        self.rounds += 1
        self.fdatasyncs += len(fds) + len(directories)
        try:
            done = self.engine.sync(fds, directories)
        except OSError as exc:
            done = self.loop.create_future()
            done.set_exception(exc)
        done.add_done_callback(lambda fut: self._end_round(fut, works, waiters))

    def _end_round(self, done: asyncio.Future[None], works: list[tuple[PartitionLog, Any]],
                   waiters: asyncio.Future[None] | None) -> None:
        exc = done.exception()
        self.sync_latency.observe(time.monotonic_ns() - self._round_started)
        self.waiting -= self._round_waiters
        now_ms = int(time.time() * 1000)
        for plog, work in works:
            plog.end_group_flush(work, exc is None, now_ms)
        if exc is not None:
            log.error("group commit of %d log(s) failed: %s", len(works), exc)
        if waiters is not None:
            if exc is None:
                waiters.set_result(None)
            else:
                waiters.set_exception(KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"flush failed: {exc}"))
        self._running = False
        self._round = set()
        if self.scheduled:
            self._start_round()
        else:
            self._idle.set()

    async def settle(self, plog: PartitionLog) -> None:
        """Returns once no round holds or will sync `plog` (handed to another shard: its files
        close next).  Rounds take milliseconds; this polls at that grain."""
        while plog in self.scheduled or plog in self._round:
            await asyncio.sleep(0.002)

    async def drain(self) -> None:
        """Returns once no round is scheduled or running (shutdown: before the logs close)."""
        await self._idle.wait()
