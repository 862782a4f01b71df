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

Process ownership: the orchestrator runs no data plane and touches no partition log, except
before any shard starts, when it moves partition directories whose owner changed (num.shards
shrank) into their new shard's directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pyk.cluster.zk import BrokerInfo, ZkCluster
from pyk.config import ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.log.files import CLEAN_SHUTDOWN_MARKER, parse_partition_dir
from pyk.server.context import shard_port
from pyk.server.control import encode, read_message
from pyk.server.metadata_store import MetadataStore

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


@dataclass
class _Shard:
    """The orchestrator's handle on one shard process."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    writer: asyncio.StreamWriter | None = None
    acked: int = -1  # last snapshot version the shard applied
    ready: asyncio.Event | None = None  # set when the shard's listener is open
    restarts: int = 0


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
            adv = config.advertised_listeners[0]
            nodes = [BrokerInfo(config.node_id + i, adv.host, shard_port(adv, i), config["broker.rack"], config.node_id)
                     for i in range(self.count)]
            self.zk = ZkCluster(config, nodes, self._zk_changed)
        else:
            self.store = MetadataStore(config.log_dirs[0], config["cluster.id"], self.count)
        self._zk_thread = ThreadPoolExecutor(1, "pyk-zk")
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
        await self._stopped.wait()
        await self._stop_all()
        return self.exit_code

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
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
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
            while (left := await asyncio.wait_for(self._zk_call(self.zk.leaderships_to_move),
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
            log.warning("controlled shutdown: %d leaderships not moved in %.1fs; stopping anyway", left,
                        time.monotonic() - started)
        else:
            log.info("controlled shutdown: leaderships moved in %.2fs", time.monotonic() - started)

    async def _stop_all(self) -> None:
        if self.zk is not None and self._started and self.config["controlled.shutdown.enable"]:
            await self._controlled_shutdown()
        live = [s.process for s in self.shards if s.process is not None and s.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
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
            await asyncio.get_running_loop().run_in_executor(None, self.zk.close)
        self._zk_thread.shutdown(wait=False)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.shards if s.process is not None]
