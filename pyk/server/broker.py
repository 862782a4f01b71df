"""The broker process: owns the logs, the metadata store, the listeners and the periodic tasks.

Lifecycle: `start()` recovers the logs (LogManager.load), makes sure every partition the
metadata knows has a log, then opens the listeners; `stop()` closes the listeners and every
connection, flushes and closes the logs and writes the clean-shutdown marker.

Everything here runs on one event loop, which owns every partition: no locks on the data plane.
The control plane (topics, configs: `MetadataStore` plus the admin handlers) is kept apart from
the data plane (Produce/Fetch/ListOffsets on `PartitionLog`s) so that the multi-core step can
give each worker process its own group of partitions and keep one metadata writer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from pyk.config import ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.log import LogManager, PartitionLog
from pyk.log.config import LogConfig
from pyk.server.connection import Connection
from pyk.server.dispatch import Dispatcher
from pyk.server.metadata_store import MetadataStore, TopicInfo
from pyk.server.purgatory import FetchPurgatory

log = logging.getLogger("pyk.server")

_HOUSEKEEPING_INTERVAL_S = 0.1  # flush.ms granularity; the flusher is a cheap scan of due logs
_CHECKPOINT_INTERVAL_S = 60.0


class Broker:
    """One single-node broker process (see module docstring for ownership)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.node_id: int = config.node_id
        self.log_defaults = LogConfig.from_server(config)
        self.logs = LogManager(config.log_dirs, self.log_defaults)
        # meta.properties (Kafka's file) is the source of the cluster id; the store checks it.
        cluster_id = self.logs.ensure_meta_properties(self.node_id, config["cluster.id"])
        self.metadata = MetadataStore(config.log_dirs[0], cluster_id)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.purgatory: FetchPurgatory | None = None
        self.dispatcher = Dispatcher(self)
        self.connections: set[Connection] = set()
        self._servers: list[socket.socket] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.purgatory = FetchPurgatory(self.loop)
        started = time.monotonic()
        self.logs.load({t.name: self.topic_log_config(t) for t in self.metadata.topics.values() if t.configs})
        for topic in self.metadata.topics.values():
            for p in range(topic.partitions):
                if self.logs.get(topic.name, p) is None:  # created in metadata, crashed before the log
                    self.logs.create(topic.name, p, self.topic_log_config(topic))
        log.info(
            "loaded %d topics, %d partitions in %.2fs (cluster id %s)",
            len(self.metadata.topics),
            sum(t.partitions for t in self.metadata.topics.values()),
            time.monotonic() - started,
            self.metadata.cluster_id,
        )
        for listener in self.config.listeners:
            self._servers.append(self._listen(listener.host or "0.0.0.0", listener.port))
            log.info("listening on %s (node %d)", listener, self.node_id)
        self._tasks.append(asyncio.ensure_future(self._housekeeping()))

    def _listen(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(self.config["socket.listen.backlog.size"])
        sock.setblocking(False)
        assert self.loop is not None
        self.loop.add_reader(sock.fileno(), self._accept, sock)
        return sock

    def _accept(self, server: socket.socket) -> None:
        for _ in range(64):  # drain the backlog a bounded amount per loop turn
            try:
                sock, _addr = server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for opt, key in ((socket.SO_SNDBUF, "socket.send.buffer.bytes"), (socket.SO_RCVBUF, "socket.receive.buffer.bytes")):
                if self.config[key] > 0:
                    sock.setsockopt(socket.SOL_SOCKET, opt, self.config[key])
            assert self.loop is not None
            conn = Connection(
                sock, self.loop, self.dispatcher.on_frame, self.config["socket.request.max.bytes"], self.connections.discard
            )
            self.connections.add(conn)

    async def _housekeeping(self) -> None:
        """Time-based flush (flush.ms) and periodic checkpoints of recovery points."""
        last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(_HOUSEKEEPING_INTERVAL_S)
            try:
                now_ms = int(time.time() * 1000)
                for plog in self.logs.all_logs():
                    plog.flush_if_due(now_ms)
                if time.monotonic() - last_checkpoint >= _CHECKPOINT_INTERVAL_S:
                    self.logs.checkpoint()
                    last_checkpoint = time.monotonic()
            except Exception:
                log.exception("housekeeping failed; retrying next interval")

    async def serve_forever(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self) -> None:
        assert self.loop is not None
        for sock in self._servers:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self._servers.clear()
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.close(None)
        self.logs.close()
        log.info("stopped cleanly: logs flushed and closed, clean-shutdown marker written")

    # Shared helpers for handlers ----------------------------------------------------------------
    def topic_log_config(self, topic: TopicInfo) -> LogConfig:
        return self.log_defaults.with_overrides(topic.configs)

    def partition_log(self, topic: str, partition: int) -> PartitionLog:
        """The log of a partition this broker leads, or UNKNOWN_TOPIC_OR_PARTITION."""
        plog = self.logs.get(topic, partition)
        if plog is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} is not hosted here")
        return plog

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        """Validates, records and creates the logs of a new topic; returns once it can be served."""
        config = self.log_defaults.with_overrides(configs)
        info = self.metadata.create_topic(name, partitions, configs)
        for p in range(partitions):
            self.logs.create(name, p, config)
        log.info("created topic %s with %d partitions%s", name, partitions, f" configs {configs}" if configs else "")
        return info

    def maybe_auto_create(self, name: str) -> TopicInfo | None:
        if not self.config["auto.create.topics.enable"]:
            return None
        return self.create_topic(name, self.config["num.partitions"], {})

    def delete_topic(self, name: str) -> None:
        info = self.metadata.delete_topic(name)
        assert self.purgatory is not None
        for p in range(info.partitions):
            self.logs.delete(name, p)
            self.purgatory.wake_all((name, p))
        log.info("deleted topic %s", name)

    def on_append(self, topic: str, partition: int, nbytes: int) -> None:
        assert self.purgatory is not None
        self.purgatory.on_append((topic, partition), nbytes)

    def brokers(self) -> list[dict[str, Any]]:
        """This node as Metadata/DescribeCluster list it: the first advertised listener."""
        adv = self.config.advertised_listeners[0]
        return [{"node_id": self.node_id, "host": adv.host, "port": adv.port, "rack": None}]
