"""Multiprocess layout: an orchestrator process and one shard process per core.

Each shard is a whole single-node broker for its own group of partitions: its own event loop
pinned to one core, its own listener (port = configured port + shard index), its own Kafka node
id (node.id + shard index) and its own log directory (`<log.dir>/shard-<index>`).  Metadata
advertises every shard as a node and each partition's leader as the shard that owns it, so a
client sends each Produce/Fetch straight to the process that holds the partition, as it would to
a partition leader in a Kafka cluster: the data plane never takes a lock or a hop between
processes.  See docs/shards.md for the design and the measurements that chose it.

The orchestrator owns what must have one writer: the metadata store (topics, configs, placement,
producer-id blocks).  Shards send it admin changes over their control channel
(`pyk.server.control`); it applies each, sends the new snapshot to every shard, and answers once
all of them acknowledged.  It restarts a shard that dies (the shard recovers its logs on start,
the others keep serving), and on SIGTERM/SIGINT stops every shard cleanly.

Process ownership: the orchestrator runs no data plane and touches no partition log.  It moves
partition directories between shard directories only when no shard holds them open: before any
shard starts (their owner changed: num.shards shrank), and during a balancing move, between the
old owner's release and the new owner's adoption (`move_partition`, pyk.server.balancer).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyk.cluster.zk import BrokerInfo, ZkCluster
from pyk.config import ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.log.files import CLEAN_SHUTDOWN_MARKER, fsync_dir, parse_partition_dir
from pyk.server.balancer import BalancerConfig, ShardBalancer
from pyk.server.context import shard_port
from pyk.server.control import encode, read_message
from pyk.server.metadata_store import MetadataStore
from pyk.server.metrics import ShardSnapshot

if TYPE_CHECKING:
    from aiohttp.web import AppRunner

log = logging.getLogger("pyk.shard")

_ACK_TIMEOUT_S = 30.0  # a shard that cannot apply a snapshot this long is restarted
_STOP_TIMEOUT_S = 30.0
_RESTART_BACKOFF_S = 0.5
_ZK_RETRY_S = 0.5
_T = TypeVar("_T")


def shard_dir(log_dir: str, index: int) -> str:
    return os.path.join(log_dir, f"shard-{index}")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def _rename(source: str, target: str) -> None:
    """A directory into another one of the same file system, durably (both parents synced)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(source, target)
    fsync_dir(os.path.dirname(source))
    fsync_dir(os.path.dirname(target))


@dataclass
class _Shard:
    """The orchestrator's handle on one shard process."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    writer: asyncio.StreamWriter | None = None
    acked: int = -1  # last snapshot version the shard applied
    ready: asyncio.Event | None = None  # set when the shard's listener is open
    restarts: int = 0
    requests: dict[int, asyncio.Future[Any]] = field(default_factory=dict)  # the orchestrator's, by id


class Orchestrator:
    """Starts, watches and stops the shards; the single writer of cluster metadata."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.count: int = config["num.shards"] or usable_cores()
        for log_dir in config.log_dirs:
            os.makedirs(log_dir, exist_ok=True)
        # The metadata's writer: this host alone (a JSON document), or ZooKeeper shared with the
        # other hosts of a cluster (pyk.cluster.zk), whose blocking calls run on one thread.
        self.store: MetadataStore | None = None
        self.zk: ZkCluster | None = None
        if config["zookeeper.connect"]:
            adv = config.advertised_listeners
            protocols = tuple((a.name, config["listener.security.protocol.map"].get(a.name, a.name)) for a in adv)
            nodes = [BrokerInfo(config.node_id + i, adv[0].host, shard_port(adv[0], i), config["broker.rack"],
                                config.node_id, tuple((a.name, a.host, shard_port(a, i)) for a in adv), protocols)
                     for i in range(self.count)]
            self.zk = ZkCluster(config, nodes, self._zk_changed)
        else:
            self.store = MetadataStore(config.log_dirs[0], config["cluster.id"], self.count)
        self._zk_thread = ThreadPoolExecutor(1, "pyk-zk")
        self._zk_closing = False  # the session is being closed: no call may reach it any more
        self._zk_dirty = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.version = 0
        self.shards = [_Shard(i) for i in range(self.count)]
        self._ops = asyncio.Lock()
        self._acked = asyncio.Condition()
        self._stopping = False
        self._moving_leaders = False  # a controlled shutdown: the cluster state is still followed
        self._stopped = asyncio.Event()
        self._started = False  # all shards came up once; before that a shard exit is fatal
        self.exit_code = 0
        self._scrapes: dict[int, asyncio.Future[ShardSnapshot | None]] = {}  # metrics requests in flight
        self._scrape_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self.balancer = ShardBalancer(self, BalancerConfig.from_server(config), config.log_dirs[0])

    @property
    def shard_count(self) -> int:
        return self.count

    # Start-up ----------------------------------------------------------------------------------
    def place_directories(self) -> None:
        """Moves each partition directory into its owning shard's directory.

        Runs before any shard starts.  A shard whose directory gained or lost a partition
        loses its clean-shutdown marker, so it re-checks its logs from their recovery points
        (the moved partition has none in its new shard: it is checked from the start).
        """
        if self.store is None:
            return  # a cluster host: partitions stay where they are (num.shards must not change)
        owner = {(t.name, p): shard for t in self.store.topics.values() for p, shard in enumerate(t.placement)}
        for log_dir in self.config.log_dirs:
            for index in range(self.count):
                os.makedirs(shard_dir(log_dir, index), exist_ok=True)
            for entry in sorted(os.listdir(log_dir)):
                if not entry.startswith("shard-") or not os.path.isdir(os.path.join(log_dir, entry)):
                    continue
                source = os.path.join(log_dir, entry)
                for name in os.listdir(source):
                    tp = parse_partition_dir(name)
                    if tp is None or tp not in owner or shard_dir(log_dir, owner[tp]) == source:
                        continue
                    target = shard_dir(log_dir, owner[tp])
                    os.rename(os.path.join(source, name), os.path.join(target, name))
                    for changed in (source, target):
                        try:
                            os.unlink(os.path.join(changed, CLEAN_SHUTDOWN_MARKER))
                        except FileNotFoundError:
                            pass
                    log.info("moved %s from %s to %s (placement changed)", name, entry, os.path.basename(target))

    async def run(self) -> int:
        self.place_directories()
        loop = self._loop = asyncio.get_running_loop()
        if self.zk is not None:
            try:
                await self._zk_call(self.zk.start)
            except Exception as exc:
                log.error("cannot join the cluster through ZooKeeper %s: %s: %s", self.config["zookeeper.connect"],
                          type(exc).__name__, exc)
                await asyncio.get_running_loop().run_in_executor(None, self.zk.close)
                return 1
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        log.info("starting %d shard(s); cluster id %s", self.count, (self.zk or self.store).cluster_id)  # type: ignore[union-attr]
        for shard in self.shards:
            await self._start(shard, listen=shard.index != 0)
        endpoint = await self._serve_metrics()  # while the shards start: /ready says when they are up
        if await self._all_ready(self.shards[1:]):
            first = self.shards[0]
            assert first.writer is not None
            first.writer.write(encode(("listen",)))
            if await self._all_ready([first]):
                self._started = True
                log.info("started: %d shard(s) serving, pids %s", self.count, self.pids())
                if self.zk is not None:
                    self.zk.serving = True  # every shard listens: register the nodes
                    self._zk_dirty.set()
                    asyncio.ensure_future(self._follow_zk())
                    if self.config["auto.leader.rebalance.enable"]:
                        asyncio.ensure_future(self._rebalance_leaders())
                else:
                    await self.balancer.start()  # moves between shards of one host, not of a cluster
        await self._stopped.wait()
        self.balancer.stop()
        await self._stop_all()
        if endpoint is not None:
            await endpoint.cleanup()
        return self.exit_code

    # Metrics and health ---------------------------------------------------------------------------
    async def _serve_metrics(self) -> AppRunner | None:
        """The metrics.listener endpoint (None: off, or it could not bind and start-up stops)."""
        address: tuple[str, int] | None = self.config["metrics.listener"]
        if address is None:
            return None
        from pyk.server import exporter  # aiohttp and prometheus-client: the orchestrator's alone

        try:
            return await exporter.start(address, self)
        except OSError as exc:
            log.error("cannot serve metrics.listener=%s:%d: %s; stopping", address[0], address[1], exc)
            self.exit_code = 1
            self.request_stop()
            return None

    def is_ready(self) -> bool:
        """Every shard recovered its logs and listens (/ready)."""
        return self._started and not self._stopping and all(
            s.ready is not None and s.ready.is_set() and s.process is not None and s.process.poll() is None
            for s in self.shards)

    def offline_partitions(self, serving: set[int]) -> int:
        """Kafka's OfflinePartitionsCount: in a cluster the controller's count of partitions
        with no live leader (0 on the other hosts); on a single host, the partitions placed on a
        shard not in `serving` (no leader answers for them)."""
        if self.zk is not None:
            return self.zk.offline_partitions()
        assert self.store is not None
        return sum(shard not in serving for t in self.store.topics.values() for shard in t.placement)

    def active_controller(self) -> bool:
        """Kafka's ActiveControllerCount: a single host is its own controller."""
        return self.zk is None or self.zk.is_active_controller()

    async def collect_metrics(self, timeout: float) -> list[ShardSnapshot]:
        """Every live shard's metrics; a shard that does not answer within `timeout` is left out."""
        loop = asyncio.get_running_loop()
        asked: list[int] = []
        for shard in self.shards:
            if shard.writer is not None and not shard.writer.is_closing():
                scrape_id = next(self._scrape_ids)
                self._scrapes[scrape_id] = loop.create_future()
                shard.writer.write(encode(("collect", scrape_id)))
                asked.append(scrape_id)
        if asked:
            await asyncio.wait([self._scrapes[i] for i in asked], timeout=timeout)
        out = []
        for scrape_id in asked:
            future = self._scrapes.pop(scrape_id)
            if future.done() and future.result() is not None:
                out.append(future.result())
            else:
                future.cancel()
        return [s for s in out if s is not None]

    async def _all_ready(self, shards: list[_Shard]) -> bool:
        """Waits until these shards listen; False if start-up failed meanwhile."""
        for shard in shards:
            assert shard.ready is not None
            ready = asyncio.ensure_future(shard.ready.wait())
            stop = asyncio.ensure_future(self._stopped.wait())
            await asyncio.wait([stop, ready], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            stop.cancel()
        return not self._stopped.is_set()

    async def _start(self, shard: _Shard, listen: bool = True) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "pyk.server.shard_main", str(child.fileno())]
        shard.process = subprocess.Popen(cmd, pass_fds=[child.fileno()])
        child.close()
        reader, writer = await asyncio.open_connection(sock=parent)
        shard.writer = writer
        shard.acked = -1
        shard.ready = asyncio.Event()
        writer.write(encode(("init", self.config.raw, shard.index, self.count)))
        writer.write(encode(("snapshot", self.version, self._snapshot())))
        if listen:
            writer.write(encode(("listen",)))
        asyncio.ensure_future(self._serve(shard, reader, writer, shard.process))

    async def _serve(self, shard: _Shard, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     process: subprocess.Popen[bytes]) -> None:
        """Reads one shard's messages until its process goes away, then restarts it."""
        try:
            while True:
                message = await read_message(reader)
                if message[0] == "ack":
                    async with self._acked:
                        shard.acked = message[1]
                        self._acked.notify_all()
                elif message[0] == "ready":
                    assert shard.ready is not None
                    shard.ready.set()
                elif message[0] == "call":
                    asyncio.ensure_future(self._call(writer, *message[1:]))
                elif message[0] == "metrics":
                    future = self._scrapes.get(message[1])
                    if future is not None and not future.done():
                        future.set_result(message[2])
                elif message[0] == "response":
                    _, request_id, result, error = message
                    future = shard.requests.pop(request_id, None)
                    if future is not None and not future.done():
                        if error is None:
                            future.set_result(result)
                        else:
                            future.set_exception(KafkaError(ErrorCode(error[0]), error[1]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        for future in shard.requests.values():
            if not future.done():
                future.set_exception(KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, f"shard {shard.index} exited"))
        shard.requests.clear()
        code = await asyncio.get_running_loop().run_in_executor(None, process.wait)
        async with self._acked:
            self._acked.notify_all()
        if self._stopping:
            return
        if not self._started:
            log.error("shard %d failed during start-up (exit code %s); stopping", shard.index, code)
            self.exit_code = 1
            self.request_stop()
            return
        shard.restarts += 1
        log.error("shard %d (pid %d) exited with code %s; restarting it (restart #%d)",
                  shard.index, process.pid, code, shard.restarts)
        await asyncio.sleep(min(_RESTART_BACKOFF_S * 2 ** min(shard.restarts - 1, 5), 10.0))
        if not self._stopping:
            await self._start(shard)

    # Requests to shards and partition moves (pyk.server.balancer) -------------------------------
    async def request(self, index: int, op: str, **args: Any) -> Any:
        """Asks shard `index` to do something (see Broker.on_control_request); raises KafkaError."""
        shard = self.shards[index]
        if shard.writer is None or shard.writer.is_closing():
            raise KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, f"shard {index} is not running")
        request_id = next(self._request_ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        shard.requests[request_id] = future
        shard.writer.write(encode(("request", request_id, op, args)))
        try:
            return await asyncio.wait_for(future, _ACK_TIMEOUT_S)
        except asyncio.TimeoutError:
            shard.requests.pop(request_id, None)
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"shard {index} did not answer {op} in time") from None

    async def move_partition(self, topic: str, partition: int, source: int, target: int) -> bool:
        """Moves one partition from shard `source` to shard `target` while both serve (see
        docs/shards.md, "Balancing"); False if it was not on `source` any more or a step failed
        (then it is served where it was).

        The steps, in an order that a crash of any process between two of them survives:
        the source stops serving the partition and closes its log cleanly; the orchestrator
        renames the partition directory into the target's directory (same file system: the
        files are handed over, never copied); the target opens it at the next leader epoch;
        the store records the new placement and epoch; every shard gets the snapshot.  Until
        the store is saved the placement names the source, and a restart's place_directories
        moves the directory back there.
        """
        store = self.store
        if store is None:
            return False  # a cluster host: the balancer does not run there
        async with self._ops:
            info = store.get(topic)
            if info is None or partition >= info.partitions or info.placement[partition] != source:
                return False
            try:
                handover = await self.request(source, "release", topic=topic, partition=partition)
            except KafkaError as exc:
                log.warning("moving %s-%d: shard %d did not release it (%s)", topic, partition, source, exc)
                process = self.shards[source].process
                if exc.code == ErrorCode.REQUEST_TIMED_OUT and process is not None:
                    # It may have stopped serving the partition without closing it: a restart
                    # recovers it from its directory, which has not moved.
                    log.error("shard %d is stuck releasing %s-%d; restarting it", source, topic, partition)
                    process.kill()
                return False
            target_dir = shard_dir(os.path.dirname(handover.log_dir), target)
            moved = os.path.join(target_dir, os.path.basename(handover.directory))
            epoch = info.epochs[partition] + 1
            try:
                _rename(handover.directory, moved)
                await self.request(target, "adopt", topic=topic, partition=partition, log_dir=target_dir,
                                   handover=handover, leader_epoch=epoch)
            except (KafkaError, OSError) as exc:
                log.error("moving %s-%d to shard %d failed (%s); handing it back to shard %d",
                          topic, partition, target, exc, source)
                if os.path.exists(moved):
                    _rename(moved, handover.directory)
                try:
                    await self.request(source, "adopt", topic=topic, partition=partition, log_dir=handover.log_dir,
                                       handover=handover, leader_epoch=info.epochs[partition])
                except KafkaError as again:  # it died: its restart loads the directory, which is back
                    log.error("shard %d could not take %s-%d back (%s)", source, topic, partition, again)
                return False
            store.move_partition(topic, partition, target)
            await self._broadcast()
            log.info("moved %s-%d from shard %d to shard %d (leader epoch %d)", topic, partition, source, target, epoch)
            return True

    # Admin changes --------------------------------------------------------------------------------
    async def _call(self, writer: asyncio.StreamWriter, call_id: int, op: str, args: dict[str, Any]) -> None:
        result: Any = None
        error: tuple[int, str] | None = None
        async with self._ops:
            try:
                result = self._apply(op, args) if self.zk is None else await self._zk_call(self.zk.apply, op, args)
                await self._broadcast()
            except KafkaError as exc:
                error = (int(exc.code), exc.message)
            except Exception as exc:
                log.exception("admin change %s failed", op)
                error = (int(ErrorCode.UNKNOWN_SERVER_ERROR), f"{type(exc).__name__}: {exc}")
        if not writer.is_closing():
            writer.write(encode(("reply", call_id, result, error)))

    def _apply(self, op: str, args: dict[str, Any]) -> Any:
        store = self.store
        assert store is not None
        if op == "create_topic":
            return store.create_topic(args["name"], args["partitions"], args["configs"], args.get("placement")).to_doc()
        if op == "delete_topic":
            return store.delete_topic(args["name"]).to_doc()
        if op == "create_partitions":
            if store.get(args["name"]) is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {args['name']!r} does not exist")
            store.set_partitions(args["name"], args["count"], args.get("placement"))
            return None
        if op == "set_configs":
            if store.get(args["name"]) is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {args['name']!r} does not exist")
            store.set_configs(args["name"], args["configs"])
            return None
        if op == "set_broker_configs":
            store.set_broker_configs(args["resource"], args["configs"])
            return None
        if op == "alter_scram":
            store.alter_scram([tuple(d) for d in args["deletions"]], [tuple(u) for u in args["upsertions"]])
            return None
        if op == "alter_acls":
            store.alter_acls(args["deletions"], args["creations"])
            return None
        if op == "alter_client_quotas":
            store.alter_client_quotas([(path, ops) for path, ops in args["changes"]])
            return None
        if op == "next_producer_id":
            return store.next_producer_id()
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown control operation {op!r}")

    async def _broadcast(self) -> None:
        """Sends the new snapshot to every shard and waits until each live one applied it."""
        self.version += 1
        version, snapshot = self.version, encode(("snapshot", self.version, self._snapshot()))
        for shard in self.shards:
            if shard.writer is not None and not shard.writer.is_closing():
                shard.writer.write(snapshot)

        def applied() -> bool:
            return all(s.acked >= version or s.process is None or s.process.poll() is not None for s in self.shards)

        async with self._acked:
            try:
                await asyncio.wait_for(self._acked.wait_for(applied), _ACK_TIMEOUT_S)
            except asyncio.TimeoutError:
                late = [s.index for s in self.shards if s.acked < version]
                raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"shards {late} did not apply metadata in time") from None

    def _snapshot(self) -> dict[str, Any]:
        if self.zk is not None:
            return self.zk.snapshot()
        assert self.store is not None
        return self.store.snapshot()

    # ZooKeeper ----------------------------------------------------------------------------------
    async def _zk_call(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._zk_closing:  # e.g. a shard's ISR change racing the host's stop
            raise KafkaError(ErrorCode.NOT_CONTROLLER, "this host is stopping: its ZooKeeper session is closed")
        return await asyncio.get_running_loop().run_in_executor(self._zk_thread, fn, *args)

    def _zk_changed(self) -> None:
        """From kazoo's thread: the cluster state may have changed."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._zk_dirty.set)

    async def _follow_zk(self) -> None:
        """Reads the cluster state again after each change and sends it to the shards (changes
        arriving meanwhile coalesce into the next read)."""
        assert self.zk is not None
        sent: dict[str, Any] | None = None
        while not self._stopping or self._moving_leaders:
            await self._zk_dirty.wait()
            self._zk_dirty.clear()
            try:
                snapshot = await self._zk_call(self.zk.refresh)
                if snapshot != sent:
                    async with self._ops:
                        await self._broadcast()
                    sent = snapshot
            except Exception as exc:  # ZooKeeper unreachable, a shard late: try again shortly
                log.warning("cluster state refresh failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(_ZK_RETRY_S)
                self._zk_dirty.set()

    async def _rebalance_leaders(self) -> None:
        """auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds the
        controller (whichever host it is then) checks the preferred leaders."""
        assert self.zk is not None
        while not self._stopping:
            await asyncio.sleep(self.config["leader.imbalance.check.interval.seconds"])
            if self._stopping:
                return
            try:
                await self._zk_call(self.zk.rebalance_leaders)
            except Exception as exc:  # ZooKeeper unreachable: the next check tries again
                log.warning("leader rebalance check failed (%s: %s)", type(exc).__name__, exc)

    # Stopping --------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stopping = True
        self._stopped.set()

    async def _controlled_shutdown(self) -> None:
        """Before a cluster host stops: the controller moves its leaderships to other in-sync
        replicas (Kafka's controlled shutdown), so clients move on with retriable errors and no
        partition goes offline.  Bounded by controlled.shutdown.max.retries x
        controlled.shutdown.retry.backoff.ms; past that the host stops anyway."""
        assert self.zk is not None
        started = time.monotonic()
        deadline = started + max(1, self.config["controlled.shutdown.max.retries"]) * \
            self.config["controlled.shutdown.retry.backoff.ms"] / 1000
        if not self.zk.connected:
            log.warning("controlled shutdown skipped: ZooKeeper is not connected")
            return
        self._moving_leaders = True
        try:
            await asyncio.wait_for(self._zk_call(self.zk.begin_controlled_shutdown), deadline - started)
            while (left := await asyncio.wait_for(self._zk_call(self.zk.partitions_to_release),
                                                  max(0.1, deadline - time.monotonic()))) \
                    and time.monotonic() < deadline:
                self._zk_dirty.set()
                await asyncio.sleep(0.1)
        except Exception as exc:  # ZooKeeper unreachable: stop as an uncontrolled shutdown would
            log.warning("controlled shutdown failed (%s: %s); stopping anyway", type(exc).__name__, exc)
            return
        finally:
            self._moving_leaders = False
        if left:
            log.warning("controlled shutdown: %d partitions still led here or listing this host in their ISR after "
                        "%.1fs; stopping anyway", left, time.monotonic() - started)
        else:
            log.info("controlled shutdown: leaderships moved and out of the ISRs in %.2fs", time.monotonic() - started)

    async def _stop_all(self) -> None:
        if self.zk is not None and self._started and self.config["controlled.shutdown.enable"]:
            await self._controlled_shutdown()
        live = [s.process for s in self.shards if s.process is not None and s.process.poll() is None]
        for shard in self.shards:
            if shard.writer is not None:
                shard.writer.close()  # the shard stops when its channel ends (it ignores signals)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        loop = asyncio.get_running_loop()
        for process in live:
            try:
                await asyncio.wait_for(loop.run_in_executor(None, process.wait), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                log.error("shard pid %d did not stop in %.0fs; killing it", process.pid, _STOP_TIMEOUT_S)
                process.kill()
        log.info("all shards stopped")
        if self.zk is not None:
            # Not on the ZooKeeper thread: a refresh there may be waiting for a lost connection.
            self._zk_closing = True
            await asyncio.get_running_loop().run_in_executor(None, self.zk.close)
        self._zk_thread.shutdown(wait=False)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.shards if s.process is not None]
