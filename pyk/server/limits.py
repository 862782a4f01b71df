"""A shard's limits on what clients may hold: connections (Kafka's ConnectionQuotas) and the
memory of request frames being received (Kafka's request MemoryPool).

Kafka's rules, per shard (a shard is a node with its own listener ports, pyk/server/broker.py):

* `max.connections`: at the limit the shard stops accepting; new connections wait in the listen
  backlog until one closes (Kafka's acceptor blocks the same way).  The listener named by
  `inter.broker.listener.name` is not blocked, so replication keeps its connections.
* `max.connections.per.ip` / `max.connections.per.ip.overrides`: a connection beyond its
  address's limit is accepted and closed at once, with one log line (Kafka's
  TooManyConnectionsException path).
* `queued.max.request.bytes`: a cap on the bytes of large frames being received at once.  A
  frame's announced size is reserved before its bytes are read and released when it is handed
  to its handler; a connection that finds the pool full stops being read (the kernel's socket
  buffer and TCP flow control hold the client) and is granted its reservation, first come first
  served, as frames complete.  Like Kafka's non-strict SimpleMemoryPool, a reservation is granted
  while anything is left, so the cap can be passed by at most one frame and a frame of any
  allowed size eventually gets its turn.

Owned by the shard's event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Callable

log = logging.getLogger("pyk.server")


class MemoryPool:
    """Reservations of bytes for frames being received (see module docstring); capacity <= 0: no limit."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self.loop = loop
        self.capacity = capacity
        self.used = 0  # bytes reserved by frames being received
        self._waiting: deque[tuple[int, Callable[[int], None]]] = deque()  # (size, on_granted), oldest first

    def reserve(self, size: int, on_granted: Callable[[int], None]) -> bool:
        """True if `size` bytes are reserved now; otherwise the caller waits, and `on_granted(size)`
        runs (from the loop) once they are reserved for it."""
        if not self._waiting and self._room():
            self.used += size
            return True
        self._waiting.append((size, on_granted))
        return False

    def release(self, size: int) -> None:
        self.used -= size
        while self._waiting and self._room():
            size, on_granted = self._waiting.popleft()
            self.used += size
            self.loop.call_soon(on_granted, size)

    def cancel(self, on_granted: Callable[[int], None]) -> None:
        """Withdraws a waiting request (its connection closed)."""
        for entry in self._waiting:
            if entry[1] == on_granted:
                self._waiting.remove(entry)
                return

    def _room(self) -> bool:
        return self.capacity <= 0 or self.used < self.capacity  # 0 or -1: no pool, as in Kafka's SocketServer


class ConnectionQuotas:
    """Counts a shard's connections, in total and per client address (see module docstring)."""

    def __init__(self, max_connections: int, per_ip: int, overrides: dict[str, int]) -> None:
        self.max_connections = max_connections
        self.per_ip = per_ip
        self.overrides = _resolve(overrides)
        self.total = 0
        self.by_address: dict[str, int] = {}

    @property
    def full(self) -> bool:
        return self.total >= self.max_connections

    def refusal(self, address: str) -> str | None:
        """Why a new connection from `address` must be closed, or None if it may stay."""
        limit = self.overrides.get(address, self.per_ip)
        if self.by_address.get(address, 0) >= limit:
            return (f"connection from {address} refused: the address already has the configured maximum of "
                    f"{limit} connections (max.connections.per.ip{'.overrides' if address in self.overrides else ''})")
        return None

    def opened(self, address: str) -> None:
        self.total += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1

    def closed(self, address: str) -> None:
        self.total -= 1
        left = self.by_address[address] - 1
        if left:
            self.by_address[address] = left
        else:
            del self.by_address[address]


def _resolve(overrides: dict[str, int]) -> dict[str, int]:
    """Override keys as the addresses connections come from: host names are resolved once, at
    start (Kafka resolves them when the config is applied); one that does not resolve is logged
    and left out."""
    out: dict[str, int] = {}
    for host, count in overrides.items():
        try:
            out[str(ipaddress.ip_address(host))] = count
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            log.warning("max.connections.per.ip.overrides: cannot resolve %s (%s); its override is ignored",
                        host, exc)
            continue
        for info in infos:
            out[str(info[4][0])] = count
    return out
