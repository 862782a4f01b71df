"""The I/O engines (pyk/server/engine.py) in-process, each against the other, plus group commit
and the io_uring fallback.

* Senders: the same responses (bytes and file regions) written by the epoll and the io_uring
  sender to a TCP socket with a small send buffer and a slow reader, so short writes, full
  sockets and partly drained pipes all happen; the reader must get the exact byte stream.
* GroupCommit: appends in one loop turn share one round; a failed fdatasync answers the waiters
  with KAFKA_STORAGE_ERROR and leaves the recovery point where it was.
* Fallback: PYK_DISABLE_IO_URING=1 stands in for a kernel or seccomp policy without io_uring.
  io.engine=io_uring then fails to start with a clear error; io.engine=auto serves on epoll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import pyk._native as native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.partition_log import GroupFlush
from pyk.server import engine as engines
from tests.helpers import BrokerProcess, BrokerStartError, confluent_consume, confluent_produce, make_records
from tests.log.conftest import BASE_TS, batch, open_log, shared_io, small_config

ENGINES = ["epoll", "io_uring"]
FILE_SIZE = 4 << 20
WAIT_S = 60.0


@dataclass
class Region:
    """A FileSlice stand-in: what the senders read of a part that is not bytes."""

    fd: int
    position: int
    size: int


class FakeConnection:
    """The Writer face of pyk.server.connection.Connection: a socket and close()."""

    def __init__(self, sock: socket.socket, engine: engines.Engine) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = "test"
        self.closed: str | None = None
        self.sender = engine.sender(self)

    def close(self, reason: str | None, level: int = logging.INFO) -> None:
        if self.closed is None:
            self.closed = reason or "closed"
            self.sender.close()


async def until(predicate: Callable[[], object], what: str) -> None:
    """Polls predicate() on the loop (the engine's completions run meanwhile) until it holds."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
def log_dir(tmp_path) -> str:
    return os.path.join(str(tmp_path), "t-0")


@pytest.fixture(scope="module")
def segment(tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "segment.log"
    path.write_bytes(random.Random(7).randbytes(FILE_SIZE))
    fd = os.open(path, os.O_RDONLY)
    yield fd, path.read_bytes()
    os.close(fd)


def tcp_pair(sndbuf: int) -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    peer.setblocking(False)
    return peer, client


def slow_reader(sock: socket.socket, size: int, out: bytearray) -> None:
    """Reads `size` bytes in small bites with pauses: the writer keeps finding the socket full."""
    rnd = random.Random(size)
    deadline = time.monotonic() + WAIT_S
    while len(out) < size and time.monotonic() < deadline:
        chunk = sock.recv(rnd.choice([4096, 65536, 1 << 20]))
        if not chunk:
            break
        out += chunk
        if rnd.random() < 0.02:
            time.sleep(0.001)


def responses(seed: int, fd: int, data: bytes, count: int) -> tuple[list[list[object]], bytes]:
    rnd = random.Random(seed)
    out, expected = [], bytearray()
    for _ in range(count):
        parts: list[object] = []
        for _ in range(rnd.randint(1, 6)):
            if rnd.random() < 0.5:
                chunk = rnd.randbytes(rnd.randint(0, 3000))
                parts.append(chunk)
                expected += chunk
            else:
                position = rnd.randrange(FILE_SIZE)
                size = rnd.randint(1, min(FILE_SIZE - position, rnd.choice([100, 70_000, 1 << 20])))
                parts.append(Region(fd, position, size))
                expected += data[position : position + size]
        out.append(parts)
    return out, bytes(expected)


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sender_writes_the_exact_stream(name, seed, segment):
    fd, data = segment
    batches, expected = responses(seed, fd, data, 30)

    async def run() -> bytes:
        engine = engines.create(name, asyncio.get_running_loop(), shared_io().group_commit)
        peer, client = tcp_pair(sndbuf=32 * 1024)
        got = bytearray()
        reader = threading.Thread(target=slow_reader, args=(client, len(expected), got))
        reader.start()
        conn = FakeConnection(peer, engine)
        for parts in batches:
            conn.sender.send(parts)
            await asyncio.sleep(0)
        while reader.is_alive():
            await asyncio.sleep(0.01)
        assert conn.closed is None, conn.closed
        conn.close(None)
        client.close()
        await until(lambda: peer.fileno() == -1, "the sender to let go of the socket")
        engine.close()
        return bytes(got)

    got = asyncio.run(run())
    assert len(got) == len(expected)
    assert got == expected


@pytest.mark.parametrize("name", ENGINES)
def test_a_region_past_the_end_of_its_file_closes_the_connection(name, segment):
    fd, _ = segment

    async def run() -> str | None:
        engine = engines.create(name, asyncio.get_running_loop(), shared_io().group_commit)
        peer, client = tcp_pair(sndbuf=1 << 20)
        conn = FakeConnection(peer, engine)
        conn.sender.send([b"header", Region(fd, FILE_SIZE + 100, 500)])
        await until(lambda: conn.closed, "the connection to close")
        client.close()
        await until(lambda: peer.fileno() == -1, "the sender to let go of the socket")
        engine.close()
        return conn.closed

    assert asyncio.run(run()) == "segment region vanished during send"


def test_uring_close_waits_for_writes_in_flight(segment):
    """A connection closed while its chain is stuck on a full socket: the fd stays open until the
    kernel let go of it (a new socket reusing the number must never receive the old writes)."""
    fd, _ = segment

    async def run() -> None:
        engine = engines.UringEngine(asyncio.get_running_loop())
        peer, client = tcp_pair(sndbuf=16 * 1024)
        conn = FakeConnection(peer, engine)
        conn.sender.send([Region(fd, 0, 3 << 20)])  # the client never reads: the chain waits
        assert conn.sender.inflight
        conn.close("test")
        assert peer.fileno() != -1, "closed with writes in flight"
        await until(lambda: peer.fileno() == -1, "the socket to close once the writes are let go")
        assert conn.sender.pipe is None and conn.sender.inflight == 0
        client.close()
        engine.close()

    asyncio.run(run())


def test_uring_sends_from_the_loop_while_the_socket_has_room(segment):
    """Bytes and file regions go out with sendmsg / sendfile in send() itself while the socket
    has room (no SQE, no completion round trip); what a full socket leaves goes to the ring."""
    fd, data = segment

    async def run() -> None:
        engine = engines.UringEngine(asyncio.get_running_loop())
        peer, client = tcp_pair(sndbuf=64 * 1024)
        conn = FakeConnection(peer, engine)
        conn.sender.send([b"answer", Region(fd, 10, 1000), b"tail"])
        assert conn.sender.idle and not engine.ring.queued, "an answer with room went through the ring"
        assert client.recv(1010, socket.MSG_WAITALL) == b"answer" + data[10:1010] + b"tail"
        big = len(data)  # more than the socket's buffers hold: the client reads nothing yet
        conn.sender.send([b"head", Region(fd, 0, big)])
        assert conn.sender.inflight, "what the full socket left is the ring's"
        client.setblocking(False)
        got = bytearray()
        while len(got) < 4 + big:
            got += await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 1 << 20), WAIT_S)
        assert bytes(got) == b"head" + data[:big]
        conn.close(None)
        await until(lambda: peer.fileno() == -1, "the sender to let go of the socket")
        client.close()
        engine.close()

    asyncio.run(run())


def test_uring_reads_from_disk_on_the_ring_and_from_the_cache_on_the_loop(tmp_path):
    """A large region whose pages need the disk is spliced by the ring's workers (the loop never
    waits for the read); once the page cache holds it, the same region goes out with sendfile
    from the loop, a full socket waiting on a ring poll only."""
    data = random.Random(11).randbytes(1 << 20)
    path = tmp_path / "cold.log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    if native.cached_pages(fd, 0, len(data)) == len(data) // 4096:
        os.close(fd)
        pytest.skip("this file system keeps the pages in memory (tmpfs)")

    async def run() -> None:
        engine = engines.UringEngine(asyncio.get_running_loop())
        kinds: list[int] = []
        queue_chain = engine.queue_chain

        def recording(sender: engines.UringSender, chain: list[tuple[int, object]]) -> None:
            kinds.extend(kind for kind, _ in chain)
            queue_chain(sender, chain)

        engine.queue_chain = recording  # type: ignore[method-assign]
        peer, client = tcp_pair(sndbuf=256 * 1024)
        client.setblocking(False)
        conn = FakeConnection(peer, engine)
        for cold in (True, False):  # the first send reads the disk; it leaves the pages cached
            kinds.clear()
            conn.sender.send([b"head", Region(fd, 0, len(data))])
            got = bytearray()
            while len(got) < 4 + len(data):
                got += await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 1 << 20), WAIT_S)
            assert bytes(got) == b"head" + data
            await until(lambda: conn.sender.idle, "the sender to finish")
            if cold:
                assert engines._FILL in kinds, "a region on disk was read on the loop"
            else:
                assert engines._FILL not in kinds, f"a cached region went through the ring: {kinds}"
        conn.close(None)
        await until(lambda: peer.fileno() == -1, "the sender to let go of the socket")
        client.close()
        engine.close()

    try:
        asyncio.run(run())
    finally:
        os.close(fd)


# Group commit -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENGINES)
def test_appends_in_one_turn_share_one_flush(name, log_dir):
    async def run() -> None:
        loop = asyncio.get_running_loop()
        engine = engines.create(name, loop, shared_io().group_commit)
        commit = engines.GroupCommit(loop, engine)
        plog = open_log(log_dir, small_config(**{"flush.messages": "1", "segment.bytes": "1000000"}))
        plog.on_flush_due = commit.schedule
        waiters = []
        for _ in range(5):
            plog.append(batch(2), BASE_TS)
            waiters.append(commit.waiter(plog))
        assert plog.recovery_point == 0, "append must not fdatasync in line"
        assert all(w is waiters[0] for w in waiters)
        await waiters[0]
        assert plog.recovery_point == plog.log_end_offset == 10
        assert (commit.rounds, commit.fdatasyncs, commit.waiters) == (1, 1, 5)
        # Below flush.messages nothing waits: the next append is answered at once.
        plog.update_config(small_config(**{"flush.messages": "3", "segment.bytes": "1000000"}))
        plog.append(batch(1), BASE_TS)
        assert commit.waiter(plog) is None
        await commit.drain()
        plog.close()
        engine.close()

    asyncio.run(run())


@pytest.mark.parametrize("name", ENGINES)
def test_a_failed_flush_answers_storage_error(name, log_dir):
    async def run() -> None:
        loop = asyncio.get_running_loop()
        engine = engines.create(name, loop, shared_io().group_commit)
        commit = engines.GroupCommit(loop, engine)
        plog = open_log(log_dir, small_config(**{"flush.messages": "1"}))
        plog.on_flush_due = commit.schedule
        plog.begin_group_flush = lambda: GroupFlush([1 << 20], None, plog.log_end_offset)  # no such fd
        plog.append(batch(1), BASE_TS)
        waiter = commit.waiter(plog)
        assert waiter is not None
        with pytest.raises(KafkaError) as failed:
            await waiter
        assert failed.value.code == ErrorCode.KAFKA_STORAGE_ERROR
        assert plog.recovery_point == 0
        await commit.drain()
        engine.close()

    asyncio.run(run())


# Fallback -----------------------------------------------------------------------------------------
def test_resolve_without_io_uring(monkeypatch):
    monkeypatch.setenv(engines.DISABLE_ENV, "1")
    assert engines.io_uring_unavailable() == "disabled by PYK_DISABLE_IO_URING=1"
    assert engines.resolve("epoll") == "epoll"
    assert engines.resolve("auto") == "epoll"
    with pytest.raises(engines.EngineUnavailable, match="io.engine=io_uring but io_uring is unavailable"):
        engines.resolve("io_uring")


def test_auto_preferring_io_uring_falls_back_with_one_line(monkeypatch, caplog):
    """Where io_uring is the preference, auto without it says so once (the orchestrator
    announces; the shards resolve quietly)."""
    monkeypatch.setattr(engines, "AUTO_PREFERENCE", "io_uring")
    monkeypatch.setenv(engines.DISABLE_ENV, "1")
    with caplog.at_level(logging.INFO, logger="pyk.server"):
        assert engines.resolve("auto", announce=True) == "epoll"
        assert engines.resolve("auto") == "epoll"
    assert [r.getMessage() for r in caplog.records] == [
        "io.engine=auto: io_uring is unavailable (disabled by PYK_DISABLE_IO_URING=1); using epoll"]
    monkeypatch.delenv(engines.DISABLE_ENV)
    assert engines.resolve("auto") == "io_uring"


def test_resolve_with_io_uring(monkeypatch):
    monkeypatch.delenv(engines.DISABLE_ENV, raising=False)
    assert engines.resolve("io_uring") == "io_uring"
    assert engines.resolve("auto") == engines.AUTO_PREFERENCE


def test_forced_io_uring_without_it_fails_to_start(tmp_path):
    b = BrokerProcess(tmp_path, {"io.engine": "io_uring"}, env={engines.DISABLE_ENV: "1"})
    with pytest.raises(BrokerStartError) as failed:
        b.start(timeout=20)
    assert "exited with code 1" in str(failed.value)
    assert "io.engine=io_uring but io_uring is unavailable: disabled by PYK_DISABLE_IO_URING=1" in b.log_text()


def test_auto_without_io_uring_serves_on_epoll(tmp_path):
    b = BrokerProcess(tmp_path, {"io.engine": "auto"}, env={engines.DISABLE_ENV: "1"})
    b.start()
    try:
        records = make_records(20, value_size=5000)
        confluent_produce(b.bootstrap, "fallback", records)
        got = confluent_consume(b.bootstrap, "fallback", 0, 0, len(records))
        assert [r.content() for r in got] == [r.content() for r in records]
    finally:
        assert b.stop() == 0
    text = b.log_text()
    fallback = "io.engine=auto: io_uring is unavailable (disabled by PYK_DISABLE_IO_URING=1); using epoll"
    assert text.count(fallback) == (1 if engines.AUTO_PREFERENCE == "io_uring" else 0)
    assert text.count("uses the epoll engine") == b.shards
