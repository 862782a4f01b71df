"""The control channel between the orchestrator (the one metadata writer) and each shard.

One Unix socket pair per shard carries length-prefixed pickled messages (both ends are our own
processes, started by the orchestrator):

    orchestrator -> shard   ("snapshot", version, snapshot)   the whole cluster metadata after a change
                            ("listen",)                        open the listener (start-up ordering, below)
                            ("reply", call_id, result, error)  the answer to a shard's call
                            ("collect", request_id)            a metrics scrape (pyk.server.exporter)
                            ("request", id, op, args)          the orchestrator asks the shard (balancer:
                                                               traffic, release, adopt; pyk.server.balancer)
    shard -> orchestrator   ("ack", version)                   the snapshot is applied: its partitions are served
                            ("ready",)                         the listener is open
                            ("call", call_id, op, args)        an admin change (create topic, ...) to apply
                            ("metrics", request_id, snapshot)  the shard's ShardSnapshot (None: it failed)
                            ("response", id, result, error)    the answer to a request

Start-up ordering: shard 0 listens on the bootstrap port, so it opens its listener only after
every other shard is ready; a client that reached the bootstrap port finds every node it is
told about already listening.

A call is answered only after every shard acknowledged the snapshot that carries the change, so
an admin request (CreateTopics, ...) returns once every shard can serve the new state.  Metadata
changes are rare and small (a snapshot of 1,000 partitions is a few tens of KiB), so sending the
whole snapshot keeps shards trivially consistent: no deltas to order or replay.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
from collections.abc import Awaitable, Callable
from typing import Any

from pyk.errors import ErrorCode, KafkaError

log = logging.getLogger("pyk.server")

_HEADER = 4

log = logging.getLogger("pyk.shard")


def encode(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_HEADER, "big") + data


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    size = int.from_bytes(await reader.readexactly(_HEADER), "big")
    message: tuple[Any, ...] = pickle.loads(await reader.readexactly(size))  # noqa: S301 - both ends are pyk processes
    return message


class ControlClient:
    """The shard's end: applies snapshots as they arrive and makes admin calls.

    Owned by the shard's event loop.  `apply_snapshot` runs synchronously between messages, so
    a reply is always handled after the snapshot that the orchestrator sent before it.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 apply_snapshot: Callable[[int, dict[str, Any]], None], collect: Callable[[], object]) -> None:
        self._reader = reader
        self._writer = writer
        self._apply = apply_snapshot
        self._collect = collect
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self.may_listen = asyncio.Event()
        # Answers the orchestrator's requests (set by the broker before start).
        self.on_request: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None

    async def run(self) -> None:
        """Reads messages until the orchestrator goes away (then the shard must stop)."""
        try:
            while True:
                message = await read_message(self._reader)
                if message[0] == "snapshot":
                    _, version, snapshot = message
                    self._apply(version, snapshot)
                    self._writer.write(encode(("ack", version)))
                elif message[0] == "request":
                    asyncio.ensure_future(self._answer(*message[1:]))
                elif message[0] == "listen":
                    self.may_listen.set()
                elif message[0] == "collect":
                    self._writer.write(encode(("metrics", message[1], self._metrics())))
                elif message[0] == "reply":
                    _, call_id, result, error = message
                    future = self._calls.pop(call_id, None)
                    if future is not None and not future.done():
                        if error is None:
                            future.set_result(result)
                        else:
                            future.set_exception(KafkaError(ErrorCode(error[0]), error[1]))
        finally:
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(KafkaError(ErrorCode.NOT_CONTROLLER, "the orchestrator is gone"))

    def _metrics(self) -> object:
        try:
            return self._collect()
        except Exception:  # a scrape must never stop the shard
            log.exception("collecting this shard's metrics failed")
            return None

    async def _answer(self, request_id: int, op: str, args: dict[str, Any]) -> None:
        result: Any = None
        error: tuple[int, str] | None = None
        try:
            assert self.on_request is not None
            result = await self.on_request(op, args)
        except KafkaError as exc:
            error = (int(exc.code), exc.message)
        except Exception as exc:
            log.exception("control request %s failed", op)
            error = (int(ErrorCode.UNKNOWN_SERVER_ERROR), f"{type(exc).__name__}: {exc}")
        if not self._writer.is_closing():
            self._writer.write(encode(("response", request_id, result, error)))

    def ready(self) -> None:
        self._writer.write(encode(("ready",)))

    async def call(self, op: str, **args: Any) -> Any:
        """Asks the orchestrator to apply an admin change; raises KafkaError on refusal."""
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        self._writer.write(encode(("call", call_id, op, args)))
        return await future
