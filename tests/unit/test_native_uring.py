"""Ring (io_uring through liburing): pyk._native against tests/ref/uring.py, which does the same
ops with os.splice / socket.sendmsg / os.fdatasync.  The bytes that reach the peer socket and
the (token, res) completions must be the same, links included."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
from tests.ref.parity import no_deadline, outcome

FILE_SIZE = 32 * 1024
FILE_DATA = bytes((i * 7 + i // 251) & 0xFF for i in range(FILE_SIZE))
WAIT_S = 10.0


@pytest.fixture(scope="module")
def data_fd(tmp_path_factory):
    path = tmp_path_factory.mktemp("uring") / "segment.log"
    path.write_bytes(FILE_DATA)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


@contextmanager
def channel(impl) -> Iterator[tuple]:
    """(ring, sending socket, receiving socket, pipe read end, pipe write end); the socket buffers
    are big enough that no test transfer has to wait for the reader."""
    ring = impl.Ring(64)
    a, b = socket.socketpair()
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.setblocking(False)
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        yield ring, a, b, r, w
    finally:
        ring.close()
        os.close(r)
        os.close(w)
        a.close()
        b.close()


def wait_completions(ring, count: int) -> list[tuple[int, int]]:
    """Reaps until `count` completions arrived, waking on the ring's eventfd as the engine does."""
    done: list[tuple[int, int]] = []
    deadline = time.monotonic() + WAIT_S
    while len(done) < count and time.monotonic() < deadline:
        select.select([ring.eventfd], [], [], 0.1)
        done += ring.reap()
    assert len(done) == count, f"{len(done)} of {count} completions after {WAIT_S}s: {done}"
    assert ring.pending == 0
    return sorted(done)


def receive(sock: socket.socket, size: int) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + WAIT_S
    while len(got) < size and time.monotonic() < deadline:
        try:
            got += sock.recv(size - len(got))
        except BlockingIOError:
            select.select([sock], [], [], 0.1)
    return bytes(got)


part = st.one_of(
    st.binary(max_size=3000).map(lambda b: ("bytes", b)),
    st.integers(0, FILE_SIZE - 1).flatmap(
        lambda pos: st.integers(1, min(FILE_SIZE - pos, 20000)).map(lambda n: ("file", pos, n))),
)


@no_deadline
@given(parts=st.lists(part, min_size=1, max_size=12))
def test_chain_sends_the_same_bytes(impl, data_fd, parts):
    """A response as one chain: sendmsg per bytes part, splice file -> pipe -> socket per region.
    (Unlinked ops may run in any order, so only a linked chain has one right byte order.)"""
    with channel(impl) as (ring, a, b, r, w):
        token = 0
        expected = bytearray()
        sizes = []
        ring.reserve(2 * len(parts))
        for i, p in enumerate(parts):
            more = i < len(parts) - 1
            token += 1
            if p[0] == "bytes":
                assert ring.sendmsg(a.fileno(), [p[1]], 0, token, more) == len(p[1])
                expected += p[1]
                sizes.append(len(p[1]))
            else:
                _, position, size = p
                ring.splice(data_fd, position, w, size, token, True)
                token += 1
                ring.splice(r, -1, a.fileno(), size, token, more, more=more)
                expected += FILE_DATA[position : position + size]
                sizes += [size, size]
        assert ring.queued == token
        assert ring.submit() == token
        assert ring.queued == 0
        assert wait_completions(ring, token) == list(enumerate(sizes, 1))
        assert receive(b, len(expected)) == expected


@no_deadline
@given(parts=st.lists(st.binary(max_size=500), min_size=1, max_size=70), offset=st.integers(0, 600),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_sendmsg_gathers_parts_from_offset(impl, parts, offset, kind):
    with channel(impl) as (ring, a, b, r, w):
        result = outcome(ring.sendmsg, a.fileno(), [kind(p) for p in parts], offset, 1)
        if result[0] == "raise":
            assert result[1] is ValueError and (len(parts) > 64 or offset > len(parts[0]))
            return
        ring.submit()
        expected = b"".join(parts)[offset:]
        assert wait_completions(ring, 1) == [(1, len(expected))]
        assert receive(b, len(expected)) == expected


def test_a_failed_link_cancels_the_rest_of_its_chain(impl, data_fd):
    """A region past the end of the file splices 0 bytes: a short op, so its linked successors
    complete with -ECANCELED and nothing after it is sent; an unlinked op still runs."""
    with channel(impl) as (ring, a, b, r, w):
        ring.sendmsg(a.fileno(), [b"head"], 0, 1, True)
        ring.splice(data_fd, FILE_SIZE + 10, w, 100, 2, True)
        ring.splice(r, -1, a.fileno(), 100, 3, True)
        ring.sendmsg(a.fileno(), [b"tail"], 0, 4, False)
        ring.sendmsg(a.fileno(), [b"next"], 0, 5, False)
        ring.submit()
        cancelled = -errno.ECANCELED
        assert wait_completions(ring, 5) == [(1, 4), (2, 0), (3, cancelled), (4, cancelled), (5, 4)]
        assert receive(b, 8) == b"headnext"


def test_fsync(impl, tmp_path):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    not_open = 1 << 20  # no such fd (and no number a test may have reused)
    try:
        os.write(fd, b"x" * 10000)
        with channel(impl) as (ring, *_):
            ring.fsync(fd, 1)
            ring.fsync(dir_fd, 2, datasync=False)
            ring.fsync(not_open, 3)
            ring.submit()
            assert wait_completions(ring, 3) == [(1, 0), (2, 0), (3, -errno.EBADF)]
    finally:
        os.close(fd)
        os.close(dir_fd)


def test_poll_out_reports_writable(impl):
    with channel(impl) as (ring, a, b, r, w):
        ring.poll_out(a.fileno(), 7)
        ring.submit()
        [(token, mask)] = wait_completions(ring, 1)
        assert token == 7 and mask & select.POLLOUT


def test_sendmsg_pins_its_buffers_until_reaped(impl):
    """The kernel reads the parts after sendmsg() returns: a queued bytearray cannot be resized."""
    with channel(impl) as (ring, a, b, r, w):
        buf = bytearray(b"pinned")
        ring.sendmsg(a.fileno(), [buf], 0, 1)
        with pytest.raises(BufferError):
            buf += b"!"
        ring.submit()
        assert wait_completions(ring, 1) == [(1, 6)]
        buf += b"!"  # released once reaped
        assert receive(b, 6) == b"pinned"


def test_reserve_and_queue_limits(impl):
    ring = impl.Ring(8)
    try:
        with pytest.raises(ValueError):
            ring.reserve(9)
        for token in range(8):
            ring.fsync(0, token)
        with pytest.raises(OSError):
            ring.fsync(0, 8)
        ring.reserve(8)  # submits the 8 queued ops to make room
        assert ring.queued == 0
        wait_completions(ring, 8)
    finally:
        ring.close()
    with pytest.raises(ValueError):
        ring.fsync(0, 9)


def test_probe_finds_io_uring_here():
    assert native.uring_probe() is None


def test_cached_pages_counts_what_the_page_cache_holds(impl, tmp_path):
    """cachestat(2): none of a file's pages once evicted, then exactly the pages read back."""
    path = tmp_path / "cold.log"
    path.write_bytes(os.urandom(64 * 4096))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # clean pages can be evicted
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if native.cached_pages(fd, 0, 64 * 4096):
            pytest.skip("this file system keeps the pages in memory (tmpfs)")
        assert impl.cached_pages(fd, 0, 64 * 4096) == 0
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead: only the pages read
        os.pread(fd, 100, 5 * 4096 + 10)
        assert impl.cached_pages(fd, 0, 64 * 4096) == 1
        assert impl.cached_pages(fd, 5 * 4096 + 4000, 200) == 1  # it spans pages 5 and 6; 5 was read
        assert impl.cached_pages(fd, 0, 5 * 4096) == 0
    finally:
        os.close(fd)
    assert outcome(impl.cached_pages, -1, 0, 4096) == ("raise", OSError)
