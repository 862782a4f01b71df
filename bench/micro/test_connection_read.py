"""The connection read path per frame, in process: bytes written to one end of a socketpair, then
Connection._on_readable on the other until every frame reached the frame handler (a no-op).

Frames: a pipelined burst of 100 small frames (200 B: the read buffer path), one 64 KiB and one
1 MiB frame (received in place into a bytearray), one 16 MiB frame (in place, into lazily-backed
memory since the hostile-input work) -- what queued.max.request.bytes and the lazy frames could
have slowed.  Runs unchanged against an older tree (no `pool` argument there), for
before/after numbers side by side.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from bench_inputs import ROOT  # noqa: F401  (puts the repository root on sys.path)

from pyk.server.connection import READ_BUFFER_BYTES, Connection


class _Sender:
    idle = True
    responses = None  # the answered requests of the connection (metrics): nothing is answered here

    def progress(self) -> object:
        return None

    def send(self, parts: list[Any]) -> None:
        pass

    def close(self) -> None:
        pass


class _Senders:
    def sender(self, conn: Any) -> _Sender:
        return _Sender()


@pytest.fixture
def wired() -> Iterator[tuple[socket.socket, Connection, list[int]]]:
    loop = asyncio.new_event_loop()
    ours, theirs = socket.socketpair()
    for s in (ours, theirs):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    ours.setblocking(False)
    handled = [0]

    def on_frame(conn: Any, frame: Any) -> None:
        handled[0] += 1

    args: list[Any] = [ours, "127.0.0.1:1", loop, on_frame, 100 << 20, lambda c: None, _Senders(),
                       memoryview(bytearray(READ_BUFFER_BYTES))]
    if "pool" in inspect.signature(Connection).parameters:
        from pyk.server.limits import MemoryPool

        args.append(MemoryPool(loop, 256 << 20))
    conn = Connection(*args)
    yield theirs, conn, handled
    conn.close(None)
    theirs.close()
    loop.close()


@pytest.mark.parametrize("shape", ["100x200B", "64KiB", "1MiB", "16MiB"])
def test_read_frames(benchmark: Any, wired: tuple[socket.socket, Connection, list[int]], shape: str) -> None:
    theirs, conn, handled = wired
    count, size = {"100x200B": (100, 200), "64KiB": (1, 64 << 10), "1MiB": (1, 1 << 20), "16MiB": (1, 16 << 20)}[shape]
    data = ((size).to_bytes(4, "big") + b"\x00" * size) * count

    def one() -> None:
        target = handled[0] + count
        sent = 0
        while handled[0] < target:
            if sent < len(data):
                try:
                    sent += theirs.send(data[sent:])
                except BlockingIOError:
                    pass
            conn._on_readable()

    theirs.setblocking(False)
    benchmark.group = f"connection read, {shape}"
    benchmark(one)
