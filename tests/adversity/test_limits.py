"""Kafka's connection limits and the memory bound on frames being received (pyk/server/limits.py).

connections.max.idle.ms, max.connections, max.connections.per.ip(.overrides),
queued.max.request.bytes, and frames announcing more than socket.request.max.bytes, against a real
`pyk serve` on both I/O engines and on a TLS listener, with hundreds of slow-loris connections
beside a real client.  Every wait is for a positive event (a close, an answer, a log line).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyk.server.engine import io_uring_unavailable
from tests.adversity.wire import API_API_VERSIONS, WireClient, frame, record_batch, request_header
from tests.helpers import BrokerProcess, confluent_consume, confluent_produce, make_records, wait_for
from tests.security.conftest import secure_broker
from tests.security.pki import Pki

ENGINES = ["epoll", pytest.param("io_uring", marks=pytest.mark.skipif(
    io_uring_unavailable() is not None, reason=f"io_uring: {io_uring_unavailable()}"))]
MIB = 1024 * 1024


def rss(b: BrokerProcess) -> int:
    """Resident bytes of the broker's processes (orchestrator and shards)."""
    total = 0
    for pid in b.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def open_clients(bootstrap: str, n: int, tls: ssl.SSLContext | None = None, deadline_s: float = 20.0) -> list[WireClient]:
    """n connections that each got an ApiVersions answer; one the broker closed (a connection of an
    earlier check whose close it had not seen yet still counted) is replaced until the deadline."""
    clients: list[WireClient] = []
    deadline = time.monotonic() + deadline_s
    while len(clients) < n:
        c = WireClient(bootstrap, tls=tls)
        try:
            assert c.api_versions()
            clients.append(c)
        except (ConnectionError, ssl.SSLError):
            c.close()
            assert time.monotonic() < deadline, f"only {len(clients)} of {n} connections were served"
            time.sleep(0.05)
    return clients


def log_has(b: BrokerProcess, text: str, timeout: float = 10.0) -> bool:
    return bool(wait_for(lambda: text in b.log_text(), timeout=timeout, what=f"log line {text!r}"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[tuple[BrokerProcess, str, ssl.SSLContext]]:
    """A broker with an SSL listener and small limits: (broker, SSL bootstrap, client TLS context)."""
    b = secure_broker(tmp_path_factory.mktemp("pyk-tls-limits"), pki, shards=1,
                      **{"connections.max.idle.ms": 1500, "max.connections.per.ip": 20,
                         "socket.receive.buffer.bytes": 128 * 1024})
    b.start()
    context = ssl.create_default_context(cafile=pki.ca)
    try:
        yield b, b.bootstrap_of("SSL"), context
    finally:
        if b.running:
            assert b.stop() == 0, b.log_tail()
        assert "Traceback (most recent call last)" not in b.log_text(), b.log_tail()


# connections.max.idle.ms --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_idle_connection_closed_parked_fetch_is_not(broker_factory, topic, engine):
    """A silent connection is closed after connections.max.idle.ms with a log line; a Fetch parked
    for three times that long is answered on its connection, which keeps working."""
    b = broker_factory(connections_max_idle_ms=1000, io_engine=engine, num_shards=1)
    confluent_produce(b.bootstrap, topic, make_records(1))
    with WireClient(b.bootstrap) as idle, WireClient(b.bootstrap) as waiting:
        assert idle.api_versions()
        started = time.monotonic()
        end = waiting.list_offset(topic, 0)[1]
        result = waiting.fetch(topic, 0, end, max_wait_ms=3000, min_bytes=1)
        assert result.error_code == 0 and time.monotonic() - started >= 2.5
        assert waiting.api_versions()  # still open after the long poll
        assert idle.closed_by_peer(timeout=10.0)
        assert log_has(b, "idle for more than connections.max.idle.ms (1000 ms)")


def test_idle_tls_connection_closed(tls_broker):
    """The same on an SSL listener: after a handshake and a request, and before any handshake."""
    b, bootstrap, context = tls_broker
    host, port = bootstrap.rsplit(":", 1)
    with WireClient(bootstrap, tls=context) as c, socket.create_connection((host, int(port))) as raw:
        assert c.api_versions()
        assert c.closed_by_peer(timeout=10.0)
        raw.settimeout(10.0)
        assert raw.recv(1) == b""  # no ClientHello ever came


def test_large_partial_frame_on_tls(tls_broker):
    """Over TLS too, a frame announcing 100 MB costs what was sent (8 MiB, of which the socket
    buffers can hold only about 4), not what was announced; TLS clients keep working, and the
    stalled connection is closed as idle."""
    b, bootstrap, context = tls_broker
    before = rss(b)
    with WireClient(bootstrap, tls=context) as stalled, WireClient(bootstrap, tls=context) as other:
        stalled.send_raw(struct.pack(">i", 100_000_000) + b"\x00" * (8 * MIB))
        assert other.api_versions()
        grown = rss(b) - before
        assert grown < 60 * MIB, f"RSS grew by {grown / MIB:.0f} MiB for at most 8 MiB received"
        assert stalled.closed_by_peer(timeout=15.0)


# Slow loris ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_slow_loris_beside_a_real_client(broker_factory, topic, engine):
    """300 connections: 150 trickle a request header a byte at a time (some announcing large
    frames), 150 send a few bytes and stop.  A confluent-kafka producer and consumer keep their
    latency; the silent ones are closed after connections.max.idle.ms, the tricklers are not."""
    b = broker_factory(connections_max_idle_ms=2000, io_engine=engine, num_shards=1)
    host, port = b.bootstrap.rsplit(":", 1)
    confluent_produce(b.bootstrap, topic, make_records(1))
    started = time.monotonic()
    assert confluent_produce(b.bootstrap, topic, make_records(20, prefix="before"))
    baseline = time.monotonic() - started

    prefix = frame(request_header(API_API_VERSIONS, 0, 1) + b"x" * 200)[:4]
    big = struct.pack(">i", 50 * MIB)  # allowed: 5 of them fit queued.max.request.bytes, none allocated upfront
    tricklers: list[socket.socket] = []
    silent: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.3):
            for s in list(tricklers):
                s.send(b"\x00")  # never completes a frame: 0.3 s x 200 bytes is longer than the test

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    for i in range(150):
        s = socket.create_connection((host, int(port)))
        s.sendall((big if i % 30 == 0 else prefix) + b"\x00")
        tricklers.append(s)
        q = socket.create_connection((host, int(port)))
        q.sendall(b"\x00\x00")
        silent.append(q)
    try:
        started = time.monotonic()
        sent = make_records(200, prefix="during")
        assert confluent_produce(b.bootstrap, topic, sent)
        got = confluent_consume(b.bootstrap, topic, 0, 21, 200)
        during = time.monotonic() - started
        assert [r.value for r in got] == [r.value for r in sent]
        assert during < max(10 * baseline, 5.0), f"produce+consume took {during:.1f}s (baseline {baseline:.1f}s)"
        for q in silent:
            q.settimeout(15.0)
            assert q.recv(1) == b"", "a silent connection was not closed"
        for s in tricklers:  # open past the idle limit, because bytes keep coming
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        stop.set()
        thread.join()
        for s in tricklers + silent:
            s.close()


# max.connections.per.ip / max.connections ----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_per_ip_limit_and_override(broker_factory, engine):
    b = broker_factory(max_connections_per_ip=3, io_engine=engine, num_shards=1)
    clients = open_clients(b.bootstrap, 3)
    try:
        with WireClient(b.bootstrap) as extra:
            assert extra.closed_by_peer(timeout=10.0)
        assert log_has(b, "connection from 127.0.0.1 refused: the address already has the configured maximum "
                          "of 3 connections (max.connections.per.ip)")
        assert all(c.api_versions() for c in clients)  # the others keep working
        clients.pop().close()
        clients += open_clients(b.bootstrap, 1)  # room again once the broker saw the close
    finally:
        for c in clients:
            c.close()
    o = broker_factory(max_connections_per_ip=2, max_connections_per_ip_overrides="localhost:1,127.0.0.1:5",
                       io_engine=engine, num_shards=1)
    clients = open_clients(o.bootstrap, 5)
    try:
        with WireClient(o.bootstrap) as extra:
            assert extra.closed_by_peer(timeout=10.0)
        assert log_has(o, "maximum of 5 connections (max.connections.per.ip.overrides)")
    finally:
        for c in clients:
            c.close()


def test_per_ip_limit_on_tls_listener(tls_broker):
    b, bootstrap, context = tls_broker
    clients = open_clients(bootstrap, 20, tls=context)
    try:
        host, port = bootstrap.rsplit(":", 1)
        extra = socket.create_connection((host, int(port)))
        extra.settimeout(10.0)
        try:
            assert extra.recv(1) == b""  # closed before any TLS byte
        finally:
            extra.close()
        assert all(c.api_versions() for c in clients)
    finally:
        for c in clients:
            c.close()


def test_max_connections_blocks_new_ones_until_one_closes(broker_factory):
    """At max.connections the shard stops accepting: a new connection waits in the backlog and is
    served as soon as one of the others closes."""
    b = broker_factory(max_connections=4, num_shards=1)
    clients = open_clients(b.bootstrap, 4)
    try:
        assert log_has(b, "has max.connections=4 connections: new connections wait until one closes")
        waiting = WireClient(b.bootstrap, timeout=30.0)
        clients.append(waiting)
        cid = waiting.send_request(API_API_VERSIONS, 0, b"")
        clients.pop(0).close()
        assert struct.unpack_from(">ih", waiting.recv_frame(), 0) == (cid, 0)
    finally:
        for c in clients:
            c.close()


# Frame sizes and the memory of frames being received ------------------------------------------------


@pytest.mark.parametrize("size", [2**31 - 1, -(2**31), 104857601], ids=["2GiB", "negative", "max+1"])
def test_oversize_announcement_closes_with_a_log_line(broker, size):
    with WireClient(broker.bootstrap) as w:
        w.send_raw(struct.pack(">i", size))
        assert w.closed_by_peer(timeout=5.0)
    assert log_has(broker, f"closed: frame size {size} outside [0, 104857600]")


# Socket buffers of both ends in the memory tests: small enough that a completed send means the
# broker read all but about 0.6 MiB of it, large enough for loopback to stay fast.
SOCKET_BUFFER = 128 * 1024


def _partial_frames(bootstrap: str, count: int, announced: int, send: int) -> list[socket.socket]:
    """`count` connections that announce `announced`-byte frames and send `send` bytes of them."""
    host, port = bootstrap.rsplit(":", 1)
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        s.connect((host, int(port)))
        s.sendall(struct.pack(">i", announced) + b"\x00" * send)
        socks.append(s)
    return socks


@pytest.mark.parametrize("engine", ENGINES)
def test_large_announced_frames_are_not_allocated_upfront(broker_factory, topic, engine):
    """16 connections announce 100 MB frames (allowed) and send 4 MiB of each: the broker holds
    what came, not 1.6 GB; then they are closed for idleness."""
    b = broker_factory(queued_max_request_bytes=-1, socket_receive_buffer_bytes=SOCKET_BUFFER, num_shards=1,
                       connections_max_idle_ms=10_000, io_engine=engine)
    before = rss(b)
    socks = _partial_frames(b.bootstrap, 16, 100_000_000, 4 * MIB)
    try:
        grown = rss(b) - before
        assert grown < 250 * MIB, f"RSS grew by {grown / MIB:.0f} MiB for 64 MiB received"
        assert confluent_produce(b.bootstrap, topic, make_records(10)) == [(0, i) for i in range(10)]
        for s in socks:
            s.settimeout(30.0)
            assert s.recv(1) == b""
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_memory_pool_bounds_frames_being_received(broker_factory, topic, engine):
    """queued.max.request.bytes=8 MiB: of 6 connections announcing 50 MB frames, one is read and
    the others wait unread, so RSS stays bounded; small requests keep flowing; a large produce
    waits for pool memory (not closed as idle meanwhile) and completes once the stalled
    connections got their turn and were closed as idle, one after the other."""
    b = broker_factory(queued_max_request_bytes=8 * MIB, socket_receive_buffer_bytes=SOCKET_BUFFER, num_shards=1,
                       connections_max_idle_ms=2000, io_engine=engine)
    host, port = b.bootstrap.rsplit(":", 1)
    before = rss(b)
    socks = []
    for _ in range(6):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        s.connect((host, int(port)))
        s.setblocking(False)
        socks.append(s)
    payload = struct.pack(">i", 50_000_000) + b"\x00" * (4 * MIB)
    try:
        # Push on every connection while the broker takes it: the one granted memory drains its
        # 8 MiB; the waiting ones fill their socket buffers and stop.
        sent = [0] * len(socks)
        pushing = set(range(len(socks)))
        deadline = time.monotonic() + 30
        while max(sent) < len(payload) and pushing and time.monotonic() < deadline:
            for i in list(pushing):
                try:
                    sent[i] += socks[i].send(payload[sent[i] : sent[i] + 65536])
                except BlockingIOError:
                    pass
                except OSError:  # the granted one, closed as idle on a loaded machine
                    pushing.discard(i)
            time.sleep(0.001)
        assert max(sent) == len(payload), "no connection's frame was read"
        assert sorted(sent)[-2] < 2 * MIB, f"connections waiting for memory were read: {sorted(sent)}"
        grown = rss(b) - before
        assert grown < 120 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"
        assert confluent_produce(b.bootstrap, topic, make_records(5)) == [(0, i) for i in range(5)]
        with WireClient(b.bootstrap, timeout=60.0) as w:
            big = w.produce(topic, 0, record_batch([(b"k", b"v" * (512 * 1024))]))  # a 512 KiB frame
            assert big.error_code == 0 and big.base_offset == 5
        assert log_has(b, "idle for more than connections.max.idle.ms")
    finally:
        for s in socks:
            s.close()
