"""Long-poll waiters for Fetch (Kafka's DelayedFetch purgatory).

A Fetch that found fewer than fetch.min.bytes parks here, keyed by the partitions it reads.
Every append to a partition credits its bytes to the waiters on that partition; a waiter whose
credit reaches its target, or whose max.wait.ms expires, is woken and the handler reads again.
Waking on appends (not polling) is what keeps end-to-end latency at the scale of one event-loop
turn.

A fetch is parked in the same event-loop callback as the read that found too little (`wait`
registers before it returns), as Kafka's tryCompleteElseWatch re-checks after watching: were it
registered a turn later, an append or high-watermark move in between would credit nobody, and
the fetch would sit out its whole max.wait.ms with the bytes readable.  For a follower that is
worse than late data: an acks=all produce waits on that follower's next fetch position, so the
partition's writes stall for replica.fetch.wait.max.ms.

A read_committed fetch (isolation_level=1) can only read up to the last stable offset, so
appended bytes do not count for it: it is credited through `on_stable`, which the broker calls
from PartitionLog.on_stable_advance with the bytes that became stable (an append outside any
transaction, or a marker ending the earliest open one) -- Kafka's DelayedFetch measures the
same thing against the LSO.

In a cluster a partition's appended bytes reach consumers only when the high watermark passes
them, so there are three levels: followers' fetches are credited by appends (`on_log_end`),
read_uncommitted consumers by the high watermark (`on_append`: on a single host every append
moves it), read_committed ones by the last stable offset (`on_stable`).

Owned by the event loop that owns the partitions; not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

PartitionKey = tuple[str, int]

# What a parked fetch may read up to: the log end (a follower), the high watermark, the LSO.
LOG_END, HIGH_WATERMARK, LAST_STABLE = 0, 1, 2

log = logging.getLogger("pyk.server")


class _Waiter:
    __slots__ = ("future", "needed", "keys", "level", "timer", "changed")

    def __init__(self, future: asyncio.Future[bool], needed: int, keys: list[PartitionKey],
                 level: int, changed: set[PartitionKey] | None) -> None:
        self.future = future
        self.needed = needed  # bytes still missing to satisfy fetch.min.bytes
        self.keys = keys
        self.level = level  # LOG_END, HIGH_WATERMARK or LAST_STABLE: which events credit it
        self.timer: asyncio.TimerHandle | None = None
        # The partitions appended to (of either kind), deleted or truncated while parked: the
        # only ones whose read can differ from the first pass's (None: not collected).
        self.changed = changed


class FetchPurgatory:
    """Parks Fetch requests until enough bytes are appended or their wait time is up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # The waiters of each partition that has any.  Public so that the append path can skip
        # the wake-up calls when it is empty (a producer-only load) with one attribute load.
        self.parked: dict[PartitionKey, set[_Waiter]] = {}

    def wait(self, keys: Iterable[PartitionKey], needed: int, timeout_ms: int,
             level: int = HIGH_WATERMARK, changed: set[PartitionKey] | None = None) -> asyncio.Future[bool]:
        """Parks a fetch now (see module docstring) until `needed` more bytes reach any of `keys`
        (True) or the timeout (False); at other levels, `needed` more bytes below the log end /
        last stable offset.  The keys that changed meanwhile are added to `changed`, so the
        wake-up re-reads only those."""
        waiter = _Waiter(self._loop.create_future(), needed, list(keys), level, changed)
        for key in waiter.keys:
            self.parked.setdefault(key, set()).add(waiter)
        waiter.timer = self._loop.call_later(timeout_ms / 1000.0, self._complete, waiter, False)
        waiter.future.add_done_callback(lambda _: self._remove(waiter))  # also when the request is cancelled
        # Formatted only when enabled: this is the long-poll path.
        log.debug("fetch parked for up to %d ms, %d bytes short, follower=%s, read_committed=%s, on %s", timeout_ms,
                  needed, level == LOG_END, level == LAST_STABLE, waiter.keys)
        return waiter.future

    def size(self) -> int:
        """The parked fetches (each once, however many partitions it waits on)."""
        return len(set().union(*self.parked.values()))

    def on_append(self, key: PartitionKey, nbytes: int) -> None:
        """`nbytes` of a partition passed its high watermark (read_uncommitted waiters can read them)."""
        self._credit(key, nbytes, HIGH_WATERMARK)

    def on_log_end(self, key: PartitionKey, nbytes: int) -> None:
        """`nbytes` were appended to a replicated partition (its followers can read them)."""
        self._credit(key, nbytes, LOG_END)

    def on_stable(self, key: PartitionKey, nbytes: int) -> None:
        """`nbytes` of a partition became stable (read_committed waiters can read them)."""
        self._credit(key, nbytes, LAST_STABLE)

    def _credit(self, key: PartitionKey, nbytes: int, level: int) -> None:
        waiters = self.parked.get(key)
        if not waiters:
            return
        for waiter in list(waiters):
            if waiter.changed is not None:
                waiter.changed.add(key)
            if waiter.level != level:
                continue
            waiter.needed -= nbytes
            if waiter.needed <= 0:
                self._complete(waiter, True)

    def wake_all(self, key: PartitionKey) -> None:
        """Wakes every waiter on a partition whose state changed in a way other than an append
        (deleted, truncated): the re-read reports the new state."""
        for waiter in list(self.parked.get(key, ())):
            if waiter.changed is not None:
                waiter.changed.add(key)
            self._complete(waiter, True)

    def _complete(self, waiter: _Waiter, satisfied: bool) -> None:
        if not waiter.future.done():
            waiter.future.set_result(satisfied)
        self._remove(waiter)

    def _remove(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        for key in waiter.keys:
            waiters = self.parked.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self.parked[key]
