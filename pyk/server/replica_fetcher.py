"""Replica fetchers: a follower's copies of its leaders' logs (Kafka's ReplicaFetcherManager).

One fetcher per (source node, fetcher id) where fetcher id = hash of the partition modulo
`num.replica.fetchers`, each a task on the shard's event loop with one connection to its leader.
A fetcher loops: first, for partitions whose leader or leader epoch changed, it asks the leader
where the follower's latest epoch ends (OffsetForLeaderEpoch with the follower's node id,
KIP-101/279) and truncates its log there, so a diverged tail (records an old leader never
committed) is dropped before anything else is fetched; then it sends Fetch with its node id as
replica id, appends the answer as it is (offsets and epochs kept: PartitionLog.append_as_follower)
and takes the leader's high watermark.  The leader learns the follower's position from the fetch
offsets, which is what moves its high watermark and ISR.  Partitions under the follower
replication throttle (pyk.server.replication_quota) are left out of a fetch while they are not
caught up and the throttle's rate is exceeded.

Owned by the shard's event loop; the broker calls `update` with every snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyk.client import Connection
from pyk.config import ServerConfig
from pyk.errors import ErrorCode
from pyk.log import PartitionLog
from pyk.protocol import ApiKey
from pyk.server.purgatory import PartitionKey
from pyk.server.replication_quota import ReplicationQuota
from pyk.server.security.inter_broker import InterBrokerAuthenticationError, InterBrokerClient

log = logging.getLogger("pyk.server")

# Takes the leader's high watermark from a fetch answer (ReplicaManager.follower_high_watermark).
HighWatermarkSink = Callable[[PartitionLog, int], None]

FETCH_VERSION = 12
OFFSET_FOR_LEADER_EPOCH_VERSION = 4  # v3+ carries the replica id
LIST_OFFSETS_VERSION = 4  # v4+ carries the current leader epoch
LATEST, EARLIEST = -1, -2  # ListOffsets' special timestamps


@dataclass
class FollowedPartition:
    """A partition this node follows: its log, the leader epoch it follows in, and whether it
    must first truncate to where its leader's log agrees with it."""

    log: PartitionLog
    leader_epoch: int
    truncate: bool = True
    in_sync: bool = False  # caught up with the leader's high watermark at the last fetch


class ReplicaFetcher:
    """Fetches the partitions this node follows from one leader node (see module docstring)."""

    def __init__(self, node_id: int, leader: int, config: ServerConfig, client: InterBrokerClient,
                 on_high_watermark: HighWatermarkSink, quota: ReplicationQuota) -> None:
        self.node_id = node_id
        self.leader = leader
        self.config = config
        self.client = client  # connects to the leader's inter-broker listener, TLS and SASL done
        self.on_high_watermark = on_high_watermark
        self.quota = quota  # the follower replication throttle
        self.endpoint: tuple[str, int] | None = None
        self.partitions: dict[PartitionKey, FollowedPartition] = {}
        self._conn: Connection | None = None
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        # Emptied too: Python 3.11's wait_for can swallow the cancel when the answer arrives at
        # that moment, and an answer for no partition appends nothing to logs being closed.
        self.partitions = {}
        self._task.cancel()
        if self._conn is not None:
            self._conn.close()

    def set_endpoint(self, endpoint: tuple[str, int] | None) -> None:
        if endpoint != self.endpoint and self._conn is not None:
            self._conn.close()
            self._conn = None
        self.endpoint = endpoint
        self._wake.set()

    async def _run(self) -> None:
        backoff = self.config["replica.fetch.backoff.ms"] / 1000
        while True:
            if not self.partitions or self.endpoint is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                conn = await self._connection()
                await self._truncate(conn)
                await self._fetch(conn)
            except InterBrokerAuthenticationError as exc:
                log.warning("node %d: authentication to node %d failed (%s); retrying", self.node_id, self.leader, exc)
                self._drop_connection()
                await asyncio.sleep(backoff)
            except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
                log.info("node %d: fetching from node %d failed (%s); retrying", self.node_id, self.leader, exc)
                self._drop_connection()
                await asyncio.sleep(backoff)
            except Exception:
                log.exception("node %d: replica fetcher for node %d failed; retrying", self.node_id, self.leader)
                await asyncio.sleep(backoff)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed.done():
            assert self.endpoint is not None
            # Bounded by the client (connection, then authentication); not wrapped in another
            # wait_for, whose cancel can orphan the inner one's failure (Python 3.11).
            self._conn = await self.client.connect(*self.endpoint, f"pyk-replica-fetcher-{self.node_id}")
        return self._conn

    async def _request(self, conn: Connection, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        # Bounded: a leader host that stopped (SIGSTOP, a cut network) must not hold the fetcher.
        timeout = (self.config["replica.fetch.wait.max.ms"] + 30000) / 1000
        await asyncio.wait_for(self.client.refresh(conn), timeout)
        return await asyncio.wait_for(conn.request(api, version, body), timeout)

    async def _truncate(self, conn: Connection) -> None:
        """KIP-279: truncate each new follower partition to the end of its latest epoch on the
        leader (or of the leader's latest epoch it knows, when the leader lacks ours)."""
        pending = {k: fp for k, fp in self.partitions.items() if fp.truncate}
        if not pending:
            return
        topics: dict[str, list[dict[str, int]]] = {}
        for (topic, partition), fp in pending.items():
            topics.setdefault(topic, []).append({"partition": partition, "current_leader_epoch": fp.leader_epoch,
                                                 "leader_epoch": fp.log.epoch_cache.latest_epoch})
        body = {"replica_id": self.node_id,
                "topics": [{"topic": t, "partitions": parts} for t, parts in topics.items()]}
        response = await self._request(conn, ApiKey.OFFSET_FOR_LEADER_EPOCH, OFFSET_FOR_LEADER_EPOCH_VERSION, body)
        for topic in response["topics"]:
            for answer in topic["partitions"]:
                key = (topic["topic"], answer["partition"])
                followed = pending.get(key)
                if followed is None or self.partitions.get(key) is not followed:
                    continue  # moved meanwhile
                if answer["error_code"] != ErrorCode.NONE:
                    continue  # not (yet) the leader there: asked again next round
                plog = followed.log
                if answer["leader_epoch"] < 0 or answer["end_offset"] < 0:
                    target = plog.high_watermark  # no common epoch known: keep what was committed
                elif answer["leader_epoch"] == plog.epoch_cache.latest_epoch:
                    target = answer["end_offset"]
                else:
                    _, ours = plog.end_offset_for_epoch(answer["leader_epoch"])
                    target = min(answer["end_offset"], ours if ours >= 0 else plog.log_end_offset)
                if target < plog.log_end_offset:
                    log.warning("%s-%d: truncating from %d to %d (leader %d, epoch %d)", plog.topic, plog.partition,
                                plog.log_end_offset, target, self.leader, followed.leader_epoch)
                    plog.truncate_to(target)
                followed.truncate = False

    async def _fetch(self, conn: Connection) -> None:
        ready = {k: fp for k, fp in self.partitions.items() if not fp.truncate}
        quota = self.quota
        held = False
        if any(quota.is_throttled(*k) for k in ready) and quota.is_quota_exceeded():
            # Kafka's shouldFollowerThrottle: throttled partitions not caught up wait.
            kept = {k: fp for k, fp in ready.items() if fp.in_sync or not quota.is_throttled(*k)}
            held, ready = len(kept) < len(ready), kept
        if not ready:
            wait_ms = self.config["replica.fetch.backoff.ms"]
            if held:  # until the rate is back at the bound (Kafka's full backoff used half the rate)
                wait_ms = min(wait_ms, max(10, quota.delay_ms()))
            await asyncio.sleep(wait_ms / 1000)
            return
        per_partition = self.config["replica.fetch.max.bytes"]
        topics: dict[str, list[dict[str, int]]] = {}
        for (topic, partition), fp in ready.items():
            topics.setdefault(topic, []).append({
                "partition": partition, "current_leader_epoch": fp.leader_epoch, "fetch_offset": fp.log.log_end_offset,
                "last_fetched_epoch": -1, "log_start_offset": fp.log.log_start_offset,
                "partition_max_bytes": per_partition})
        body = {"replica_id": self.node_id, "max_wait_ms": self.config["replica.fetch.wait.max.ms"],
                "min_bytes": self.config["replica.fetch.min.bytes"],
                "max_bytes": self.config["replica.fetch.response.max.bytes"], "isolation_level": 0,
                "session_id": 0, "session_epoch": -1,
                "topics": [{"topic": t, "partitions": parts} for t, parts in topics.items()],
                "forgotten_topics_data": [], "rack_id": self.config["broker.rack"] or ""}
        response = await self._request(conn, ApiKey.FETCH, FETCH_VERSION, body)
        failed = False
        out_of_range: list[tuple[PartitionKey, FollowedPartition]] = []
        now_ms = int(time.time() * 1000)
        for topic in response["responses"]:
            for answer in topic["partitions"]:
                key = (topic["topic"], answer["partition_index"])
                fetched = ready.get(key)
                if fetched is None or self.partitions.get(key) is not fetched:
                    continue
                code = answer["error_code"]
                if code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    out_of_range.append((key, fetched))
                    continue
                if code != ErrorCode.NONE:
                    failed = True  # not the leader (yet, or any more): the next snapshot says who is
                    continue
                plog = fetched.log
                records = answer["records"]
                if records is not None and len(records):
                    plog.append_as_follower(memoryview(records), now_ms)
                    if quota.is_throttled(*key):
                        quota.record(len(records))
                self.on_high_watermark(plog, answer["high_watermark"])
                fetched.in_sync = plog.log_end_offset >= answer["high_watermark"]
                # The leader's log start (retention, DeleteRecords) as far as this log has it.
                start = min(answer["log_start_offset"], plog.high_watermark)
                if start > plog.log_start_offset:
                    plog.delete_records_before(start, now_ms)
        for key, fetched in out_of_range:
            await self._fetch_offset_and_truncate(conn, key, fetched)
        if failed:
            await asyncio.sleep(self.config["replica.fetch.backoff.ms"] / 1000)

    async def _fetch_offset_and_truncate(self, conn: Connection, key: PartitionKey, fetched: FollowedPartition) -> None:
        """Kafka's fetchOffsetAndTruncate, for a fetch offset outside the leader's log (whose
        answer carries no offsets): a log ending past the leader's finds where they agree by
        epoch; one ending below the leader's log start (retention or DeleteRecords there while
        this replica was away) empties itself and starts there."""
        plog = fetched.log
        latest = await self._leader_offset(conn, key, fetched.leader_epoch, LATEST)
        if latest is None or self.partitions.get(key) is not fetched:
            return  # not (yet) the leader there, or moved meanwhile: the next round asks again
        if latest < plog.log_end_offset:
            fetched.truncate = True
            return
        earliest = await self._leader_offset(conn, key, fetched.leader_epoch, EARLIEST)
        if earliest is not None and self.partitions.get(key) is fetched and earliest > plog.log_end_offset:
            plog.truncate_fully_and_start_at(earliest)

    async def _leader_offset(self, conn: Connection, key: PartitionKey, leader_epoch: int, timestamp: int) -> int | None:
        """The leader's log end (LATEST) or log start (EARLIEST) as it answers a replica's
        ListOffsets; None on an error."""
        body = {"replica_id": self.node_id, "isolation_level": 0, "topics": [{"name": key[0], "partitions": [
            {"partition_index": key[1], "current_leader_epoch": leader_epoch, "timestamp": timestamp}]}]}
        response = await self._request(conn, ApiKey.LIST_OFFSETS, LIST_OFFSETS_VERSION, body)
        answer = response["topics"][0]["partitions"][0]
        return int(answer["offset"]) if answer["error_code"] == ErrorCode.NONE else None


class ReplicaFetcherManager:
    """The fetchers of one node, reshaped by each snapshot (see module docstring)."""

    def __init__(self, node_id: int, config: ServerConfig, client: InterBrokerClient,
                 on_high_watermark: HighWatermarkSink, quota: ReplicationQuota) -> None:
        self.node_id = node_id
        self.config = config
        self.client = client
        self.on_high_watermark = on_high_watermark
        self.quota = quota
        self._fetchers: dict[tuple[int, int], ReplicaFetcher] = {}

    def update(self, followed: dict[PartitionKey, tuple[int, int, PartitionLog]],
               endpoints: dict[int, tuple[str, int]]) -> None:
        """Fetch exactly `followed` (partition -> (leader, leader epoch, log)) from the leaders'
        `endpoints`; a partition whose leader or epoch changed truncates first."""
        count = self.config["num.replica.fetchers"]
        wanted: dict[tuple[int, int], dict[PartitionKey, tuple[int, PartitionLog]]] = {}
        for key, (leader, epoch, plog) in followed.items():
            if leader < 0:
                continue
            fetcher_id = zlib.crc32(f"{key[0]}-{key[1]}".encode()) % count
            wanted.setdefault((leader, fetcher_id), {})[key] = (epoch, plog)
        for fkey in list(self._fetchers):
            if fkey not in wanted:
                self._fetchers.pop(fkey).stop()
        for fkey, parts in wanted.items():
            fetcher = self._fetchers.get(fkey)
            if fetcher is None:
                fetcher = self._fetchers[fkey] = ReplicaFetcher(self.node_id, fkey[0], self.config, self.client,
                                                                self.on_high_watermark, self.quota)
            current = fetcher.partitions
            fetcher.partitions = {}
            for key, (epoch, plog) in parts.items():
                old = current.get(key)
                same = old is not None and old.leader_epoch == epoch and old.log is plog
                fetcher.partitions[key] = old if same and old is not None else FollowedPartition(plog, epoch)
            fetcher.set_endpoint(endpoints.get(fkey[0]))

    def stop(self) -> None:
        for fetcher in self._fetchers.values():
            fetcher.stop()
        self._fetchers = {}
