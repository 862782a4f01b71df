"""One shard's broker: owns its partitions' logs, its listener, its connections and timers.

A shard is a complete Kafka node for the partitions placed on it (see pyk.server.shard for the
process layout): node id = node.id + shard index, listener port = configured port + index, logs
under `<log.dir>/shard-<index>`.  Everything here runs on the shard's single event loop, which
owns every one of its partitions, so the data plane takes no locks.

Metadata is a read-only view (`MetadataView`) replaced by each snapshot from the orchestrator;
admin changes are sent to the orchestrator with `control.call(...)` and return once every shard
applied them.  Dynamic broker configs come the same way: the cluster default ("") and this
shard's own node id apply here (`config` is the static settings under those layers), so a new
log default reaches every topic without an override from the next snapshot on.

Lifecycle: the first snapshot loads (recovers) the logs; `start()` waits for it and opens the
listener; `stop()` closes the listener and every connection, flushes and closes the logs and
writes the clean-shutdown marker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from pyk.config import ConfigError, Listener, ServerConfig, check_dynamic
from pyk.configdef import warn_removed
from pyk.coordinator import GroupCoordinator, TransactionCoordinator
from pyk.coordinator.offsets import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from pyk.errors import ErrorCode, KafkaError
from pyk.log import LogManager, PartitionLog
from pyk.log.cleaner import CleanerConfig
from pyk.log.config import LogConfig
from pyk.server.connection import READ_BUFFER_BYTES, Connection
from pyk.server.control import ControlClient
from pyk.server.dispatch import Dispatcher
from pyk.server.engine import Engine, GroupCommit, create, resolve
from pyk.server.metadata_store import MetadataView, TopicInfo
from pyk.server.purgatory import FetchPurgatory
from pyk.server.shard import shard_dir

log = logging.getLogger("pyk.server")

_HOUSEKEEPING_INTERVAL_S = 0.1  # flush.ms granularity; the flusher is a cheap scan of due logs
_CHECKPOINT_INTERVAL_S = 60.0


def shard_listener(listener: Listener, index: int) -> Listener:
    """Shard `index` listens on the configured port + index (port 0 stays 0: any free port)."""
    return Listener(listener.name, listener.host, listener.port + index if listener.port else 0)


class Broker:
    """The broker of one shard (see module docstring for ownership and lifecycle)."""

    def __init__(self, config: ServerConfig, shard_index: int = 0, shard_count: int = 1) -> None:
        self.static_config = config  # server.properties + --override
        self.config = config  # the effective settings: static under the dynamic broker configs
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.base_node_id: int = config.node_id
        self.node_id: int = config.node_id + shard_index
        self.log_defaults = LogConfig.from_server(config)
        self.logs = LogManager([shard_dir(d, shard_index) for d in config.log_dirs], self.log_defaults)
        self.metadata = MetadataView()
        self.control: ControlClient | None = None  # set by the shard entry point before start()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.purgatory: FetchPurgatory | None = None
        self.engine: Engine | None = None  # the I/O engine (io.engine), made in start()
        self.group_commit: GroupCommit | None = None
        self.dispatcher = Dispatcher(self)
        self.groups = GroupCoordinator(self)  # consumer groups of the local __consumer_offsets partitions
        self.txn = TransactionCoordinator(self)  # transactional ids of the local __transaction_state partitions
        self.connections: set[Connection] = set()
        self._read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))  # shared by the connections' reads
        self._servers: list[socket.socket] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._loaded = asyncio.Event()

    # Metadata snapshots ------------------------------------------------------------------------
    def apply_snapshot(self, version: int, snapshot: dict[str, Any]) -> None:
        """Makes this shard serve exactly the partitions the snapshot places on it.

        The first snapshot loads (and if needed recovers) the logs; later ones create logs of
        new partitions, apply config changes and delete the logs of deleted topics.
        """
        old = self.metadata.topics
        self.metadata.replace(snapshot)
        reconfigured = self._apply_dynamic_configs()
        if not self._loaded.is_set():
            cluster_id = self.logs.ensure_meta_properties(self.node_id, self.metadata.cluster_id)
            assert cluster_id == self.metadata.cluster_id
            started = time.monotonic()
            self.logs.load({t.name: self.topic_log_config(t) for t in self.metadata.topics.values() if t.configs})
            log.info("shard %d loaded %d partitions in %.2fs", self.shard_index, len(self.logs.all_logs()),
                     time.monotonic() - started)
        for name, info in old.items():
            if name not in self.metadata.topics or self.metadata.topics[name].topic_id != info.topic_id:
                self._drop_topic(info)
        for info in self.metadata.topics.values():
            config = self.topic_log_config(info)
            previous = old.get(info.name)
            if previous is not None and (reconfigured or previous.configs != info.configs):
                self.logs.update_config(info.name, config)
            for p in self.owned_partitions(info):
                plog = self.logs.get(info.name, p) or self.logs.create(info.name, p, config)
                plog.on_stable_advance = self._on_stable_advance
                if info.name not in (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC):
                    # Produce waits for its flush (handlers/produce.py); the coordinators' own
                    # appends keep the in-line flush, as nothing there would wait.
                    plog.on_flush_due = self._flush_due
                # The epoch this shard leads the partition at; the log records it in its
                # leader-epoch-checkpoint with the first batch appended under it.
                plog.leader_epoch = max(plog.leader_epoch, info.epochs[p])
        self._loaded.set()

    def _dynamic_layers(self) -> tuple[dict[str, str], dict[str, str]]:
        """(cluster default, this node's own) dynamic broker configs of the current metadata."""
        stored = self.metadata.broker_configs
        return stored.get("", {}), stored.get(str(self.node_id), {})

    def _apply_dynamic_configs(self) -> bool:
        """Rebuilds the effective config when this shard's dynamic layers changed; True if they did.

        Log defaults follow at once (the caller hands every log its new config); the cleaner is
        restarted with its new settings, as Kafka's LogCleaner.reconfigure restarts its threads.
        Stored values that no longer validate (the static config changed under them) are
        ignored with an error line, as Kafka does with invalid dynamic configs at start-up.
        """
        default, mine = self._dynamic_layers()
        if (default, mine) == (self.config.dynamic_default, self.config.dynamic_broker):
            return False
        try:
            config = self.static_config.with_dynamic(default, mine)
            log_defaults = LogConfig.from_server(config)
        except (ConfigError, KafkaError) as exc:
            log.error("shard %d: dynamic broker configs ignored: %s", self.shard_index, exc)
            return False
        old_cleaner = CleanerConfig.from_server(self.config)
        self.config, self.log_defaults = config, log_defaults
        self.logs.defaults = log_defaults
        log.info("shard %d (node %d): dynamic broker configs now default %s, node %s",
                 self.shard_index, self.node_id, default, mine)
        cleaner = CleanerConfig.from_server(config)
        if self.logs.cleaner is not None and cleaner != old_cleaner:
            assert self.loop is not None
            self.logs.stop_cleaner()
            self.logs.start_cleaner(cleaner, self.loop)
        return True

    def validate_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        """Checks a new dynamic set for one BROKER resource ("" or a node id) against this
        shard's other layer; INVALID_REQUEST naming the key, as Kafka answers for broker configs."""
        default, mine = self._dynamic_layers()
        if resource:
            mine = configs
        else:
            default = configs
        try:
            check_dynamic(configs)
            LogConfig.from_server(self.static_config.with_dynamic(default, mine))
        except (ConfigError, KafkaError) as exc:
            message = exc.message if isinstance(exc, KafkaError) else str(exc)
            raise KafkaError(ErrorCode.INVALID_REQUEST, message) from None

    def _drop_topic(self, info: TopicInfo) -> None:
        assert self.purgatory is not None
        for p in self.owned_partitions(info):
            if self.logs.get(info.name, p) is not None:
                self.logs.delete(info.name, p)
            self.purgatory.wake_all((info.name, p))
        log.info("deleted topic %s", info.name)

    def owned_partitions(self, info: TopicInfo) -> list[int]:
        return [p for p, shard in enumerate(info.placement) if shard == self.shard_index]

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.purgatory = FetchPurgatory(self.loop)
        self.engine = create(resolve(self.config["io.engine"]), self.loop, self.logs.io.group_commit)
        self.group_commit = GroupCommit(self.loop, self.engine)
        log.info("shard %d uses the %s engine", self.shard_index, self.engine.name)
        await self._loaded.wait()
        self.groups.start(self.loop)  # load the groups before any client can reach them
        self.logs.start_cleaner(CleanerConfig.from_server(self.config), self.loop)
        self.txn.start(self.loop)  # load the transactions too (prepared ones resume sending markers)
        assert self.control is not None
        listen = asyncio.ensure_future(self.control.may_listen.wait())
        stop = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait([listen, stop], return_when=asyncio.FIRST_COMPLETED)
        listen.cancel()
        stop.cancel()
        if self._stopped.is_set():
            return
        for listener in self.config.listeners:
            mine = shard_listener(listener, self.shard_index)
            self._servers.append(self._listen(mine.host or "0.0.0.0", mine.port))
            log.info("shard %d listening on %s (node %d)", self.shard_index, mine, self.node_id)
        self._tasks.append(asyncio.ensure_future(self._housekeeping()))
        self.control.ready()

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
                sock, addr = server.accept()
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
                sock, "%s:%s" % addr[:2], self.loop, self.dispatcher.on_frame, self.config["socket.request.max.bytes"],
                self.connections.discard, self.engine, self._read_buffer,
            )
            self.connections.add(conn)

    async def _housekeeping(self) -> None:
        """Time-based flush (flush.ms), removal of deleted segments and logs whose
        file.delete.delay.ms passed, a retention pass every log.retention.check.interval.ms, and
        periodic checkpoints of recovery points and log start offsets."""
        last_checkpoint = last_retention = time.monotonic()
        retention_interval_s = self.config["log.retention.check.interval.ms"] / 1000
        while True:
            await asyncio.sleep(_HOUSEKEEPING_INTERVAL_S)
            try:
                now_ms = int(time.time() * 1000)
                for plog in self.logs.all_logs():
                    plog.flush_if_due(now_ms)
                self.logs.release_expired(now_ms)
                if time.monotonic() - last_retention >= retention_interval_s:
                    self.logs.cleanup_logs(now_ms)
                    last_retention = time.monotonic()
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
        self.txn.stop()
        self.groups.stop()
        self.logs.stop_cleaner()
        if self.group_commit is not None:
            await self.group_commit.drain()  # no sync may run on a file being closed
            gc = self.group_commit
            log.info("shard %d group commit: %d flushes (%d fdatasyncs) answered %d waiting requests",
                     self.shard_index, gc.rounds, gc.fdatasyncs, gc.waiters)
        self.logs.close()
        if self.engine is not None:
            self.engine.close()
        log.info("shard %d stopped cleanly: logs flushed and closed, clean-shutdown marker written", self.shard_index)

    # Shared helpers for handlers ----------------------------------------------------------------
    def topic_log_config(self, topic: TopicInfo) -> LogConfig:
        return self.log_defaults.with_overrides(topic.configs)

    def partition_log(self, topic: str, partition: int) -> PartitionLog:
        """The log of a partition this shard leads; NOT_LEADER_OR_FOLLOWER if another shard
        does (the client refreshes its metadata and goes there), else UNKNOWN_TOPIC_OR_PARTITION."""
        plog = self.logs.get(topic, partition)
        if plog is not None:
            return plog
        info = self.metadata.get(topic)
        if info is not None and 0 <= partition < info.partitions:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"{topic}-{partition} is led by node {self.leader_of(info, partition)}, not {self.node_id}")
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{topic}-{partition} does not exist")

    def leader_of(self, info: TopicInfo, partition: int) -> int:
        return self.base_node_id + info.placement[partition]

    async def _control(self, op: str, **args: Any) -> Any:
        assert self.control is not None
        return await self.control.call(op, **args)

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                           placement: list[int] | None = None) -> TopicInfo:
        """Creates a topic; returns once every shard serves its partitions.  `placement` names
        the owning shard of each partition (a manual assignment), else the store places them."""
        self.log_defaults.with_overrides(configs)  # fail fast with INVALID_CONFIG
        warn_removed(configs, f"topic {name}")
        await self._control("create_topic", name=name, partitions=partitions, configs=configs, placement=placement)
        info = self.metadata.get(name)
        assert info is not None
        log.info("created topic %s with %d partitions%s", name, partitions, f" configs {configs}" if configs else "")
        return info

    async def maybe_auto_create(self, name: str) -> TopicInfo | None:
        if not self.config["auto.create.topics.enable"]:
            return None
        try:
            return await self.create_topic(name, self.config["num.partitions"], {})
        except KafkaError as exc:
            if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:  # a concurrent request created it: fine
                raise
            return self.metadata.get(name)

    async def delete_topic(self, name: str) -> None:
        await self._control("delete_topic", name=name)

    async def create_partitions(self, name: str, count: int, placement: list[int] | None = None) -> None:
        """Grows a topic to `count` partitions; `placement` as for create_topic, for the new ones."""
        await self._control("create_partitions", name=name, count=count, placement=placement)

    async def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        warn_removed(configs, f"topic {name}")
        await self._control("set_configs", name=name, configs=configs)

    async def set_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        """Stores the complete dynamic set of a BROKER resource; returns once every shard applied it."""
        warn_removed(configs, f"broker {resource or '<default>'}")
        await self._control("set_broker_configs", resource=resource, configs=configs)
        log.info("dynamic configs of broker %s set to %s", resource or "<default>", configs)

    async def next_producer_id(self) -> int:
        return int(await self._control("next_producer_id"))

    def _flush_due(self, plog: PartitionLog) -> None:
        assert self.group_commit is not None
        self.group_commit.schedule(plog)

    def on_append(self, topic: str, partition: int, nbytes: int) -> None:
        assert self.purgatory is not None
        self.purgatory.on_append((topic, partition), nbytes)

    def _on_stable_advance(self, plog: PartitionLog, nbytes: int) -> None:
        """A log's last stable offset moved: wake read_committed long polls on it."""
        if self.purgatory is not None:
            self.purgatory.on_stable((plog.topic, plog.partition), nbytes)

    @property
    def node_ids(self) -> range:
        """The node ids of every shard: the live nodes a replica assignment may name."""
        return range(self.base_node_id, self.base_node_id + self.shard_count)

    def brokers(self) -> list[dict[str, Any]]:
        """Every shard as a node, as Metadata/DescribeCluster list them (first advertised listener)."""
        adv = self.config.advertised_listeners[0]
        return [{"node_id": self.base_node_id + i, "host": adv.host, "port": shard_listener(adv, i).port, "rack": None}
                for i in range(self.shard_count)]
