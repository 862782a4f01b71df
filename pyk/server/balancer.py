"""Shard balancing: the orchestrator moves partitions from the hottest shard to the coolest, live.

A shard's load is the bytes its partitions took in (appends) and gave out (fetches) per second
over a window, counted by each shard's ReplicaManager and read over the control channel.  When
the hottest shard's load exceeds the coolest one's by more than `shard.balancer.threshold.percent`
of the hottest, `plan_moves` picks partitions to move, greedily: each move takes the partition of
the hottest shard whose rate best halves the gap to the coolest (never one at least as large as
the gap, which would only swap the roles), until the skew is under the threshold.  The moves
themselves are Orchestrator.move_partition's (docs/shards.md, "Balancing").

The internal topics (`__consumer_offsets`, `__transaction_state`) never move: a coordinator is the
leader of its partition and holds in memory what it loaded from it (groups, transactions, their
timers), which a move would have to hand over too.  Their load stays where it is and the other
partitions are balanced around it.

`pyk shards balance [--dry-run]` reaches the balancer through a Unix socket in the first log dir
(`pyk-admin.sock`, mode 0600: the operator of the host only) that speaks one JSON object per
line each way; `shard.balancer.enable` runs the same measure-plan-move round every window.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pyk.config import ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.server.metadata_store import INTERNAL_TOPICS, MetadataStore

log = logging.getLogger("pyk.balancer")

ADMIN_SOCKET = "pyk-admin.sock"
_MAX_REQUEST_BYTES = 65536

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class BalancerConfig:
    """The shard.balancer.* keys."""

    enable: bool
    window_ms: int
    threshold_percent: int
    min_bytes_per_sec: int

    @classmethod
    def from_server(cls, config: ServerConfig) -> BalancerConfig:
        return cls(config["shard.balancer.enable"], config["shard.balancer.window.ms"],
                   config["shard.balancer.threshold.percent"], config["shard.balancer.min.bytes.per.sec"])


@dataclass(frozen=True)
class Move:
    topic: str
    partition: int
    source: int
    target: int
    bytes_per_sec: float
    done: bool = False


@dataclass
class Plan:
    """A balancing round: each shard's load (bytes/s) measured, and after the planned moves."""

    window_s: float
    before: list[float]
    after: list[float]
    moves: list[Move] = field(default_factory=list)
    executed: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["skew_before"], doc["skew_after"] = skew(self.before), skew(self.after)
        return doc


def skew(load: list[float]) -> float:
    """How much the hottest shard's load exceeds the coolest's, in percent of the hottest."""
    top = max(load, default=0.0)
    return 0.0 if top <= 0 else (top - min(load)) / top * 100


def plan_moves(rates: Mapping[TopicPartition, float], placement: Mapping[TopicPartition, int], shards: int,
               threshold_percent: float, window_s: float = 0.0) -> Plan:
    """The moves that bring the shards' loads within `threshold_percent` of each other (see the
    module docstring); `rates` in bytes/s per partition, `placement` the shard of each."""
    load = [0.0] * shards
    for tp, shard in placement.items():
        load[shard] += rates.get(tp, 0.0)
    plan = Plan(window_s, list(load), load)
    where = dict(placement)
    movable = {tp for tp in where if tp[0] not in INTERNAL_TOPICS}
    while skew(load) > threshold_percent:
        hot = max(range(shards), key=lambda s: (load[s], -s))
        cool = min(range(shards), key=lambda s: (load[s], s))
        gap = load[hot] - load[cool]
        candidates = [tp for tp in movable if where[tp] == hot and 0 < rates.get(tp, 0.0) < gap]
        if not candidates:
            break
        best = min(candidates, key=lambda tp: (abs(gap - 2 * rates[tp]), tp))
        rate = rates[best]
        load[hot] -= rate
        load[cool] += rate
        where[best] = cool
        movable.discard(best)  # one move per partition per round
        plan.moves.append(Move(best[0], best[1], hot, cool, rate))
    return plan


class ShardOwner(Protocol):
    """What the balancer needs of the orchestrator (pyk.server.shard.Orchestrator)."""

    count: int
    store: MetadataStore | None  # None on a ZooKeeper cluster host, where the balancer does not run

    async def request(self, index: int, op: str, **args: Any) -> Any: ...
    async def move_partition(self, topic: str, partition: int, source: int, target: int) -> bool: ...


class ShardBalancer:
    """Measures the shards' loads, plans and runs moves; serves `pyk shards balance`.

    Lives in the orchestrator's event loop from `start` (once every shard is up) to `stop`.
    One round at a time: a CLI request waits for an automatic round in progress.
    """

    def __init__(self, owner: ShardOwner, config: BalancerConfig, log_dir: str) -> None:
        self.owner = owner
        self.config = config
        self.socket_path = os.path.join(log_dir, ADMIN_SOCKET)
        self._round = asyncio.Lock()
        self._server: asyncio.AbstractServer | None = None
        self._auto: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)  # left by a killed broker
            self._server = await asyncio.start_unix_server(self._serve, path=self.socket_path)
            os.chmod(self.socket_path, 0o600)
        except OSError as exc:
            log.warning("no admin socket for `pyk shards` at %s: %s", self.socket_path, exc)
        if self.config.enable:
            self._auto = asyncio.ensure_future(self._run_auto())
            log.info("automatic shard balancing: every %d ms above %d%% skew", self.config.window_ms,
                     self.config.threshold_percent)

    def stop(self) -> None:
        if self._auto is not None:
            self._auto.cancel()
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass

    def _store(self) -> MetadataStore:
        store = self.owner.store
        if store is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "shard balancing is for a single host (zookeeper.connect is set)")
        return store

    async def measure(self, window_s: float) -> tuple[dict[TopicPartition, float], dict[TopicPartition, int]]:
        """Bytes in + out per second of every partition over `window_s`, and its shard now."""
        shards = range(self.owner.count)
        first = await asyncio.gather(*(self.owner.request(i, "traffic") for i in shards))
        started = time.monotonic()
        await asyncio.sleep(window_s)
        second = await asyncio.gather(*(self.owner.request(i, "traffic") for i in shards))
        elapsed = time.monotonic() - started
        rates: dict[TopicPartition, float] = {}
        for before, after in zip(first, second, strict=True):
            for direction in ("in", "out"):
                for tp, total in after[direction].items():
                    # A partition that moved here meanwhile started from 0 on this shard.
                    earlier = before[direction].get(tp, 0)
                    rates[tp] = rates.get(tp, 0.0) + (total - earlier if total >= earlier else total) / elapsed
        placement = {(t.name, p): shard for t in self._store().topics.values() for p, shard in enumerate(t.placement)}
        return rates, placement

    async def balance(self, window_s: float, dry_run: bool, min_bytes_per_sec: float = 0.0) -> Plan:
        """One round: measure, plan, and unless `dry_run` move (skipped below `min_bytes_per_sec`
        on the hottest shard: nothing worth moving)."""
        async with self._round:
            rates, placement = await self.measure(window_s)
            plan = plan_moves(rates, placement, self.owner.count, self.config.threshold_percent, window_s)
            if dry_run or max(plan.before) < min_bytes_per_sec or not plan.moves:
                return plan
            done = []
            for move in plan.moves:
                ok = await self.owner.move_partition(move.topic, move.partition, move.source, move.target)
                done.append(Move(move.topic, move.partition, move.source, move.target, move.bytes_per_sec, ok))
            plan.moves, plan.executed = done, True
            return plan

    async def _run_auto(self) -> None:
        while True:
            try:
                plan = await self.balance(self.config.window_ms / 1000, False, self.config.min_bytes_per_sec)
                if plan.executed:
                    log.info("balanced shards: load %s -> %s bytes/s, %d partition(s) moved",
                             [round(x) for x in plan.before], [round(x) for x in plan.after],
                             sum(m.done for m in plan.moves))
            except KafkaError as exc:
                log.warning("shard balancing round skipped: %s", exc)
                await asyncio.sleep(self.config.window_ms / 1000)

    async def move(self, topic: str, partition: int, target: int) -> bool:
        """Moves one partition to shard `target` (an operator's choice, `pyk shards move`)."""
        info = self._store().get(topic)
        if info is None or not 0 <= partition < info.partitions:
            raise ValueError(f"{topic}-{partition} does not exist")
        if topic in INTERNAL_TOPICS:
            raise ValueError(f"{topic} is internal: its coordinators stay where they are")
        if not 0 <= target < self.owner.count:
            raise ValueError(f"shard {target} does not exist (shards 0..{self.owner.count - 1})")
        async with self._round:
            source = info.placement[partition]
            return source == target or await self.owner.move_partition(topic, partition, source, target)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One JSON request per line: {"op": "balance", "dry_run": bool, "window_ms": int} or
        {"op": "move", "topic": str, "partition": int, "shard": int}."""
        try:
            line = await reader.readline()
            if len(line) > _MAX_REQUEST_BYTES:
                raise ValueError("request too long")
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("op") not in ("balance", "move"):
                raise ValueError(f"unknown request {request!r}")
            answer: dict[str, Any]
            if request["op"] == "move":
                answer = {"moved": await self.move(str(request["topic"]), int(request["partition"]),
                                                   int(request["shard"]))}
            else:
                window_ms = int(request.get("window_ms") or self.config.window_ms)
                if window_ms <= 0:
                    raise ValueError("window_ms must be positive")
                answer = (await self.balance(window_ms / 1000, bool(request.get("dry_run", True)))).to_doc()
        except (ValueError, KeyError, KafkaError) as exc:
            answer = {"error": str(exc)}
        except Exception as exc:
            log.exception("shard balancing request failed")
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(answer).encode() + b"\n")
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()
