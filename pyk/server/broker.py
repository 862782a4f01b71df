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

from pyk.config import RACK_AWARE_REPLICA_SELECTOR, ServerConfig
from pyk.coordinator import GroupCoordinator, TransactionCoordinator
from pyk.coordinator.offsets import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from pyk.errors import ErrorCode, KafkaError
from pyk.log import LogManager, PartitionLog
from pyk.log.cleaner import CleanerConfig
from pyk.log.config import LogConfig
from pyk.server.admin import AdminManager
from pyk.server.connection import READ_BUFFER_BYTES, Connection
from pyk.server.context import ShardServices, shard_port
from pyk.server.control import ControlClient
from pyk.server.coordinator_host import ShardCoordinatorHost
from pyk.server.dispatch import Dispatcher, supported_versions
from pyk.server.engine import Engine, GroupCommit, create, resolve
from pyk.server.limits import ConnectionQuotas, MemoryPool
from pyk.server.metadata_store import MetadataView, TopicInfo
from pyk.server.metrics import ShardMetrics, ShardSnapshot
from pyk.server.quotas import ClientQuotas
from pyk.server.replica_fetcher import ReplicaFetcherManager
from pyk.server.replica_manager import ReplicaManager
from pyk.server.replication_quota import ReplicationQuota
from pyk.server.security.authorizer import AclBinding, Authorizer
from pyk.server.security.inter_broker import InterBrokerClient
from pyk.server.security.listener import ListenerSecurity
from pyk.server.security.scram import ScramCredential
from pyk.server.shard import shard_dir

log = logging.getLogger("pyk.server")

_HOUSEKEEPING_INTERVAL_S = 0.1  # flush.ms granularity; the flusher is a cheap scan of due logs
_CHECKPOINT_INTERVAL_S = 60.0


class Broker:
    """The broker of one shard (see module docstring for ownership and lifecycle)."""

    def __init__(self, config: ServerConfig, shard_index: int = 0, shard_count: int = 1) -> None:
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.base_node_id: int = config.node_id
        self.node_id: int = config.node_id + shard_index
        self.logs = LogManager([shard_dir(d, shard_index) for d in config.log_dirs], LogConfig.from_server(config))
        self.metadata = MetadataView()
        self.control: ControlClient | None = None  # set by the shard entry point before start()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.engine: Engine | None = None  # the I/O engine (io.engine), made in start()
        self.group_commit: GroupCommit | None = None
        self.replicas = ReplicaManager(self.logs, self.metadata, self.base_node_id, self.node_id)
        self.replicas.rack_aware_selection = config["replica.selector.class"] == RACK_AWARE_REPLICA_SELECTOR
        self.admin = AdminManager(config, self.node_id, self.metadata, self.logs, lambda: self.control)
        # How this node reaches others (replica fetchers, transaction markers): the inter-broker listener's security.
        self.inter_broker = InterBrokerClient(config)
        host = ShardCoordinatorHost(self.admin, self.node_id, self.metadata, self.replicas, self._brokers,
                                    self.inter_broker)
        self.groups = GroupCoordinator(host)  # consumer groups of the local __consumer_offsets partitions
        self.txn = TransactionCoordinator(host, self.groups)  # transactional ids of the local __transaction_state partitions
        self.groups.transactions = self.txn
        self.services = ShardServices(
            node_id=self.node_id, base_node_id=self.base_node_id, shard_count=shard_count,
            metadata=self.metadata, logs=self.logs, replicas=self.replicas, admin=self.admin, groups=self.groups,
            txn=self.txn, quotas=ClientQuotas(), inter_broker=self.inter_broker, supported_apis=supported_versions(),
            authorizer=Authorizer(config["super.users"], config["allow.everyone.if.no.acl.found"])
            if config["authorizer.class.name"] else None,
        )
        self.dispatcher = Dispatcher(self.services)
        self.fetchers: ReplicaFetcherManager | None = None  # a cluster's followers (made by the first snapshot)
        # Replication throttles (reassignments), from the dynamic broker and topic configs.
        window = (config["replication.quota.window.num"], config["replication.quota.window.size.seconds"])
        self.leader_quota = ReplicationQuota(self.node_id, "leader.replication.throttled.replicas", *window)
        self.follower_quota = ReplicationQuota(self.node_id, "follower.replication.throttled.replicas", *window)
        self.metrics = ShardMetrics(shard_index)
        self.connections: set[Connection] = set()
        self._read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))  # shared by the connections' reads
        self._pool: MemoryPool | None = None  # queued.max.request.bytes (pyk.server.limits), made in start()
        self.quotas = ConnectionQuotas(config["max.connections"], config["max.connections.per.ip"],
                                       config["max.connections.per.ip.overrides"])
        self._servers: list[socket.socket] = []
        # Listening sockets max.connections may pause (all but the inter-broker listener's), and
        # whether accepting is paused now.
        self._blockable: list[tuple[socket.socket, ListenerSecurity]] = []
        self._accept_paused = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._loaded = asyncio.Event()

    @property
    def config(self) -> ServerConfig:
        """The effective settings: the static ones under the dynamic broker configs."""
        return self.admin.config

    # Metadata snapshots ------------------------------------------------------------------------
    def apply_snapshot(self, version: int, snapshot: dict[str, Any]) -> None:
        """Makes this shard serve exactly the partitions the snapshot places on it.

        The first snapshot loads (and if needed recovers) the logs; later ones create logs of
        new partitions, apply config changes and delete the logs of deleted topics.
        """
        old = self.metadata.topics
        self.metadata.replace(snapshot)
        reconfigured = self.admin.apply_dynamic_configs(self.loop)
        if self.services.authorizer is not None:
            self.services.authorizer.update(AclBinding.from_doc(doc) for doc in self.metadata.acls)
        for quota, rate in ((self.leader_quota, "leader.replication.throttled.rate"),
                            (self.follower_quota, "follower.replication.throttled.rate")):
            quota.update(self.config[rate], self.metadata.topics.values())
        self.services.quotas.configure(self.metadata.client_quotas, self.config["quota.window.num"],
                                       self.config["quota.window.size.seconds"])
        if not self._loaded.is_set():
            cluster_id = self.logs.ensure_meta_properties(self.node_id, self.metadata.cluster_id)
            assert cluster_id == self.metadata.cluster_id
            started = time.monotonic()
            self.logs.load({t.name: self.admin.topic_log_config(t) for t in self.metadata.topics.values() if t.configs})
            log.info("shard %d loaded %d partitions in %.2fs", self.shard_index, len(self.logs.all_logs()),
                     time.monotonic() - started)
        for name, info in old.items():
            if name not in self.metadata.topics or self.metadata.topics[name].topic_id != info.topic_id:
                self._drop_topic(info)
        followed: dict[tuple[str, int], tuple[int, int, PartitionLog]] = {}
        led_before = self._coordinator_partitions()
        if self.metadata.clustered:
            self._drop_removed_replicas()
        for info in self.metadata.topics.values():
            config = self.admin.topic_log_config(info)
            previous = old.get(info.name)
            if previous is not None and (reconfigured or previous.configs != info.configs):
                self.logs.update_config(info.name, config)
            if self.metadata.clustered:
                for p in self.owned_partitions(info):
                    plog = self.logs.get(info.name, p) or self.logs.create(info.name, p, config)
                    leader = info.leaders[p]
                    self.replicas.make_replica(plog, leader, info.epochs[p], info.replicas[p], info.isr[p],
                                               info.versions[p])
                    if leader != self.node_id and not self.metadata.stopping:  # stopping: no fetch (StopReplica)
                        followed[(info.name, p)] = (leader, info.epochs[p], plog)
                continue
            for p in self.owned_partitions(info):
                plog = self.logs.get(info.name, p) or self.logs.create(info.name, p, config)
                # Produce waits for its group commit; the coordinators' own appends keep the
                # in-line flush, as nothing there would wait.
                self.replicas.attach(plog, info.epochs[p],
                                     group_commit_flushes=info.name not in (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC))
        if self.metadata.clustered:
            self._follow(followed)
            self._move_coordinators(led_before)
        self._loaded.set()

    def _coordinator_partitions(self) -> set[tuple[str, int]]:
        """The internal topics' partitions this node leads (where its coordinators serve)."""
        return {key for key, part in self.replicas.partitions.items()
                if key[0] in (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC) and part.is_leader}

    def _move_coordinators(self, led_before: set[tuple[str, int]]) -> None:
        """Coordinator failover: a newly led `__consumer_offsets` / `__transaction_state`
        partition loads its groups / transactions here, one led elsewhere now unloads them."""
        led_now = self._coordinator_partitions()
        for topic, partition in sorted(led_before - led_now):
            (self.groups if topic == OFFSETS_TOPIC else self.txn).resigned(partition)
        for topic, partition in sorted(led_now - led_before):
            (self.groups if topic == OFFSETS_TOPIC else self.txn).elected(partition)

    def _follow(self, followed: dict[tuple[str, int], tuple[int, int, PartitionLog]]) -> None:
        """A cluster's snapshot: fetch the partitions followed here from their leaders (not once
        the shard is stopping: a snapshot arriving then must not start fetchers that would
        append to logs being closed)."""
        if self._stopped.is_set():
            return
        if self.fetchers is None:
            self.fetchers = ReplicaFetcherManager(self.node_id, self.config, self.inter_broker,
                                                  self.replicas.follower_high_watermark, self.follower_quota)
            self.replicas.enable_replication(self.admin.alter_isr, self.config["replica.lag.time.max.ms"],
                                             self.leader_quota)
        endpoints = {b["node_id"]: (b["host"], b["port"]) for b in self.services.brokers()}  # inter-broker listener
        self.fetchers.update(followed, endpoints)

    # Requests of the orchestrator's shard balancer (pyk.server.balancer) -----------------------
    async def on_control_request(self, op: str, args: dict[str, Any]) -> Any:
        """`traffic`: the bytes in and out of each led partition so far; `release`: stop leading
        a partition and close its log for another shard (a Handover); `adopt`: open a partition
        directory handed over into this shard's log dir and lead it at the given epoch."""
        if op == "traffic":
            traffic = self.replicas.traffic  # the metrics' counters (pyk.server.metrics.PartitionTraffic)
            return {"in": {(p.topic, p.partition): t.bytes_in for p, t in traffic.items()},
                    "out": {(p.topic, p.partition): t.bytes_out for p, t in traffic.items()}}
        if op == "release":
            handover = await self.replicas.release(args["topic"], args["partition"])
            log.info("shard %d handed over %s-%d (log end offset %d)", self.shard_index, args["topic"],
                     args["partition"], handover.recovery_point)
            return handover
        if op == "adopt":
            info = self.metadata.get(args["topic"])
            if info is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {args['topic']!r} does not exist")
            plog = self.logs.adopt(info.name, args["partition"], args["log_dir"], args["handover"],
                                   self.admin.topic_log_config(info))
            self.replicas.attach(plog, args["leader_epoch"], group_commit_flushes=not info.internal)
            log.info("shard %d took over %s at leader epoch %d", self.shard_index, plog, args["leader_epoch"])
            return None
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown control request {op!r}")

    def _drop_removed_replicas(self) -> None:
        """A reassignment took this node out of a partition's replicas: it stops serving it and
        deletes its log (Kafka's StopReplica with deletePartition); the fetchers drop it with
        this snapshot.  A log found at start-up for a partition moved away meanwhile goes too."""
        for plog in self.logs.all_logs():
            info = self.metadata.get(plog.topic)
            p = plog.partition
            if info is not None and p < len(info.replicas) and self.node_id not in info.replicas[p]:
                log.info("node %d is no longer a replica of %s-%d: deleting its log", self.node_id, plog.topic, p)
                self.replicas.detach(plog.topic, p)

    def _drop_topic(self, info: TopicInfo) -> None:
        for p in self.owned_partitions(info):
            self.replicas.detach(info.name, p)
        log.info("deleted topic %s", info.name)

    def owned_partitions(self, info: TopicInfo) -> list[int]:
        """The partitions with a replica here: in a cluster, those whose replicas name this node."""
        if info.replicas:
            return [p for p, replicas in enumerate(info.replicas) if self.node_id in replicas]
        return [p for p, shard in enumerate(info.placement) if shard == self.shard_index]

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._pool = MemoryPool(self.loop, self.config["queued.max.request.bytes"])
        self.engine = create(resolve(self.config["io.engine"]), self.loop, self.logs.io.group_commit)
        self.group_commit = GroupCommit(self.loop, self.engine)
        self.replicas.start(self.loop, self.group_commit, self.txn)
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
            port = shard_port(listener, self.shard_index)
            security = ListenerSecurity(self.config, listener, self.dispatcher.on_frame, self._scram_credential)
            server = self._listen(listener.host or "0.0.0.0", port, security)
            self._servers.append(server)
            if listener.name != self.config["inter.broker.listener.name"]:
                self._blockable.append((server, security))
            log.info("shard %d listening on %s://%s:%d (node %d)", self.shard_index, listener.name, listener.host,
                     port, self.node_id)
        self._tasks.append(asyncio.ensure_future(self._housekeeping()))
        self._tasks.append(asyncio.ensure_future(self._expire_idle_connections()))
        self.metrics.start()
        self.control.ready()

    def _listen(self, host: str, port: int, security: ListenerSecurity) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(self.config["socket.listen.backlog.size"])
        sock.setblocking(False)
        assert self.loop is not None
        self.loop.add_reader(sock.fileno(), self._accept, sock, security)
        return sock

    def _scram_credential(self, user: str, mechanism: str) -> ScramCredential | None:
        doc = self.metadata.scram.get(user, {}).get(mechanism)
        return None if doc is None else ScramCredential.from_doc(doc)

    def _accept(self, server: socket.socket, security: ListenerSecurity) -> None:
        for _ in range(64):  # drain the backlog a bounded amount per loop turn
            if self.quotas.full and self._pause_accepting(server):
                return
            try:
                sock, addr = server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            address = str(addr[0])
            refusal = self.quotas.refusal(address)
            if refusal is not None:
                log.info("%s", refusal)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for opt, key in ((socket.SO_SNDBUF, "socket.send.buffer.bytes"), (socket.SO_RCVBUF, "socket.receive.buffer.bytes")):
                if self.config[key] > 0:
                    sock.setsockopt(socket.SOL_SOCKET, opt, self.config[key])
            assert self.loop is not None and self.engine is not None and self._pool is not None
            self.quotas.opened(address)  # before the connection exists: its close counts it out
            conn = security.connection(sock, "%s:%s" % addr[:2], self.loop, self.config["socket.request.max.bytes"],
                                       self._closed, self.engine, self._read_buffer, self._pool)
            self.connections.add(conn)

    def _closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.quotas.closed(conn.client_address)
        if self._accept_paused and not self.quotas.full and self._servers:  # (not once stop() closed them)
            self._accept_paused = False
            assert self.loop is not None
            for server, security in self._blockable:
                self.loop.add_reader(server.fileno(), self._accept, server, security)

    def _pause_accepting(self, server: socket.socket) -> bool:
        """max.connections reached: the blockable listeners stop accepting (new connections wait
        in the backlog) until a connection closes.  False for the inter-broker listener, which
        keeps accepting."""
        if not self._accept_paused:
            self._accept_paused = True
            assert self.loop is not None
            for server, _ in self._blockable:
                self.loop.remove_reader(server.fileno())
            log.info("shard %d has max.connections=%d connections: new connections wait until one closes",
                     self.shard_index, self.quotas.max_connections)
        return any(s is server for s, _ in self._blockable)

    async def _housekeeping(self) -> None:
        """Time-based flush (flush.ms), removal of deleted segments and logs whose
        file.delete.delay.ms passed, a retention pass every log.retention.check.interval.ms, and
        periodic checkpoints of recovery points and log start offsets, and in a cluster of the
        high watermarks (replica.high.watermark.checkpoint.interval.ms)."""
        last_checkpoint = last_retention = last_hw_checkpoint = time.monotonic()
        retention_interval_s = self.config["log.retention.check.interval.ms"] / 1000
        hw_interval_s = self.config["replica.high.watermark.checkpoint.interval.ms"] / 1000
        while True:
            await asyncio.sleep(_HOUSEKEEPING_INTERVAL_S)
            try:
                now_ms = int(time.time() * 1000)
                for plog in self.logs.all_logs():
                    plog.flush_if_due(now_ms)
                self.logs.release_expired(now_ms)
                if time.monotonic() - last_retention >= retention_interval_s:
                    self.metrics.retention_segments_deleted += self.logs.cleanup_logs(now_ms)
                    last_retention = time.monotonic()
                if time.monotonic() - last_checkpoint >= _CHECKPOINT_INTERVAL_S:
                    self.logs.checkpoint()
                    last_checkpoint = last_hw_checkpoint = time.monotonic()
                elif self.metadata.clustered and time.monotonic() - last_hw_checkpoint >= hw_interval_s:
                    self.logs.checkpoint_high_watermarks()
                    last_hw_checkpoint = time.monotonic()
            except Exception:
                log.exception("housekeeping failed; retrying next interval")

    async def _expire_idle_connections(self) -> None:
        """connections.max.idle.ms: a sweep over the connections a few times per idle period
        (at least every second), so a connection is closed within about 1.25 times the limit."""
        idle_ns = self.config["connections.max.idle.ms"] * 1_000_000
        interval_s = min(idle_ns / 4e9, 1.0)
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic_ns()
            for conn in list(self.connections):
                conn.expire_if_idle(now, idle_ns)

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
        if self.fetchers is not None:
            self.fetchers.stop()
        self.replicas.stop()
        self.metrics.stop()
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

    def metrics_snapshot(self) -> ShardSnapshot:
        """This shard's metrics, asked for by the orchestrator on a scrape."""
        return self.metrics.snapshot(self.services, self.dispatcher.stats.snapshot(), self.dispatcher.errors,
                                     len(self.connections), self.group_commit, bool(self._servers))

    def _brokers(self) -> list[dict[str, Any]]:
        return self.services.brokers()
