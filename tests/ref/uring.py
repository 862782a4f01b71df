"""Pure-Python twin of pyk._native.Ring: the same ops done with plain os calls at submit().

Each queued op runs in order when submit() is called (sendmsg with os-level socket.sendmsg,
splice with os.splice, fsync with os.fdatasync/os.fsync); a linked op behind one that failed or
moved fewer bytes than asked completes with -ECANCELED, as io_uring's IOSQE_IO_LINK does.  The
completions wait in a list until reap(), and an eventfd is signalled as the native ring's is.
Blocking is not modelled: tests keep every transfer within the socket's buffer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

URING_MAX_PARTS = 64


class Ring:
    def __init__(self, entries: int = 256) -> None:
        self.entries = entries
        self.eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._ops: list[tuple[int, bool, int, Callable[[], int]]] = []  # (token, link, expected, run)
        self._done: list[tuple[int, int]] = []
        self.pending = 0

    @property
    def queued(self) -> int:
        return len(self._ops)

    def close(self) -> None:
        if self.eventfd >= 0:
            os.close(self.eventfd)
            self.eventfd = -1

    def reserve(self, n: int) -> None:
        if n > self.entries:
            raise ValueError(f"a chain of {n} SQEs does not fit the ring")
        if self.entries - len(self._ops) < n:
            self.submit()

    def _queue(self, token: int, link: bool, expected: int, run: Callable[[], int]) -> None:
        if self.eventfd < 0:
            raise ValueError("the ring is closed")
        if len(self._ops) >= self.entries:
            raise OSError(errno.EBUSY, "io_uring submission queue full (call reserve() before a chain)")
        self._ops.append((token, link, expected, run))
        self.pending += 1

    def sendmsg(self, fd: int, parts: Sequence[Any], offset: int, token: int, link: bool = False) -> int:
        if not 1 <= len(parts) <= URING_MAX_PARTS:
            raise ValueError(f"sendmsg takes 1 to {URING_MAX_PARTS} parts, got {len(parts)}")
        views = [memoryview(p).cast("B") for p in parts]
        if not 0 <= offset <= len(views[0]):
            raise ValueError(f"offset {offset} outside the first part of {len(views[0])} bytes")
        views[0] = views[0][offset:]
        total = sum(len(v) for v in views)

        def run() -> int:
            with socket.socket(fileno=os.dup(fd)) as sock:
                return sock.sendmsg(views, [], socket.MSG_NOSIGNAL)

        self._queue(token, link, total, run)
        return total

    def splice(self, fd_in: int, off_in: int, fd_out: int, nbytes: int, token: int, link: bool = False,
               more: bool = False) -> None:
        def run() -> int:
            return os.splice(fd_in, fd_out, nbytes, None if off_in < 0 else off_in)

        self._queue(token, link, nbytes, run)

    def poll_out(self, fd: int, token: int, link: bool = False) -> None:
        def run() -> int:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            return poller.poll()[0][1]

        self._queue(token, link, -1, run)

    def fsync(self, fd: int, token: int, link: bool = False, datasync: bool = True) -> None:
        def run() -> int:
            (os.fdatasync if datasync else os.fsync)(fd)
            return 0

        self._queue(token, link, -1, run)

    def submit(self) -> int:
        ops, self._ops = self._ops, []
        cancel = False
        for token, link, expected, run in ops:
            if cancel:
                res = -errno.ECANCELED
            else:
                try:
                    res = run()
                except OSError as exc:
                    res = -exc.errno
                failed = res < 0 or (expected >= 0 and res != expected)
                cancel = failed and link
            if not link:
                cancel = False
            self._done.append((token, res))
        if ops:
            os.eventfd_write(self.eventfd, 1)
        return len(ops)

    def reap(self) -> list[tuple[int, int]]:
        try:
            os.eventfd_read(self.eventfd)
        except BlockingIOError:
            pass
        done, self._done = self._done, []
        self.pending -= len(done)
        return done


def uring_probe(entries: int = 8) -> str | None:
    """The reference needs nothing from the kernel's io_uring."""
    return None


_SYS_CACHESTAT = 451
_libc = ctypes.CDLL(None, use_errno=True)


def cached_pages(fd: int, offset: int, length: int) -> int:
    """Twin of pyk._native.cached_pages: cachestat(2) through ctypes."""
    span = ctypes.create_string_buffer(struct.pack("=QQ", offset, length))
    stat = ctypes.create_string_buffer(40)
    if _libc.syscall(_SYS_CACHESTAT, fd, span, stat, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    nr_cache: int = struct.unpack_from("=Q", stat.raw)[0]
    return nr_cache
