"""A shard's metrics: plain counters where the work happens, read out only when scraped.

Nothing on the request path calls prometheus-client: a request costs one call into
`pyk._native.RequestStats` (the dispatcher), a partition's traffic one integer addition on its
`PartitionTraffic` (the ReplicaManager), an error one Counter increment.  Everything else (log
sizes, offsets, committed offsets, purgatory sizes, connections, CPU) is read from the shard's
own state when the orchestrator asks for a `ShardSnapshot` over the control channel (pyk.server.control); the
orchestrator's exporter (pyk.server.exporter) joins the shards' snapshots and renders them
with Kafka's metric names (docs/metrics.md).

Everything here is owned by the shard's event loop.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine imports this module: no server imports at run time
    from pyk.log import LogManager
    from pyk.server.context import ShardServices
    from pyk.server.engine import GroupCommit
    from pyk.server.metadata_store import MetadataView
    from pyk.server.quotas import QuotaMetric
    from pyk.server.replica_manager import ReplicaManager

HISTOGRAM_BUCKETS = 64  # log2 buckets of whole microseconds, as ext/metrics.pyx (REQ_BUCKETS)
_LAG_PROBE_S = 0.25  # how often the event-loop lag probe wakes
# RequestStats' kinds (Kafka's RequestMetrics), in the order of a snapshot's lists; the local
# time's count is the request count
REQUEST_TIMES = ("totaltime", "requestqueuetime", "localtime", "remotetime", "responsequeuetime", "responsesendtime")
TOTAL_TIME, LOCAL_TIME = 0, 2


class Log2Histogram:
    """Durations in log2 buckets of whole microseconds (bucket b: dt_us < 2**b), the layout of the
    native request histograms, for the rarer events timed in Python (group-commit fsyncs, the
    event-loop lag probe)."""

    __slots__ = ("buckets", "sum_ns")

    def __init__(self) -> None:
        self.buckets = [0] * HISTOGRAM_BUCKETS
        self.sum_ns = 0

    def observe(self, dt_ns: int) -> None:
        dt_ns = max(dt_ns, 0)
        self.buckets[min((dt_ns // 1000).bit_length(), HISTOGRAM_BUCKETS - 1)] += 1
        self.sum_ns += dt_ns

    def snapshot(self) -> tuple[list[int], int]:
        return list(self.buckets), self.sum_ns


class PartitionTraffic:
    """What one served partition moved since this shard attached its log (Kafka's BytesInPerSec
    and BytesOutPerSec), counted by the ReplicaManager.  Kept off PartitionLog on purpose: one
    more attribute there takes its instances past CPython's 29 shared-key attributes, and every
    attribute access of the append path slows down (measured: +4 % per produced partition)."""

    __slots__ = ("bytes_in", "bytes_out", "attached_end_offset")

    def __init__(self, attached_end_offset: int) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.attached_end_offset = attached_end_offset  # messages in = log end offset - this


@dataclass(slots=True)
class PartitionStats:
    """One partition's log as Kafka's kafka.log:type=Log and BrokerTopicMetrics report it, and
    its replication as kafka.cluster:type=Partition does (a single host leads every partition
    it holds, as their one replica)."""

    topic: str
    partition: int
    size: int
    segments: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int
    bytes_in: int
    messages_in: int
    bytes_out: int
    leader: bool  # this node leads it
    replicas: int  # ReplicasCount: the assignment, less the replicas a reassignment is adding (as Kafka)
    in_sync_replicas: int  # InSyncReplicasCount
    min_insync_replicas: int


@dataclass(slots=True)
class ShardSnapshot:
    """Everything one shard reports on a scrape (pickled over the control channel)."""

    shard: int
    # api key -> ([bucket counts] per kind, [sum ns] per kind), kinds as REQUEST_TIMES
    requests: dict[int, tuple[list[list[int]], list[int]]]
    errors: dict[tuple[int, int], int]  # (api key, error code) -> responses or partitions with it
    partitions: list[PartitionStats]
    committed: list[tuple[str, str, int, int]]  # (group, topic, partition, committed offset)
    groups: dict[str, str]  # group id -> state
    connections: int
    fetch_purgatory: int
    produce_purgatory: int  # group-commit fsync waiters plus acks=all partitions waiting for the ISR
    fsync: tuple[list[int], int]
    loop_lag: tuple[list[int], int]
    cpu_seconds: float
    cleaner_passes: int
    cleaner_last_seconds: float
    cleaner_last_bytes_read: int
    cleaner_last_bytes_written: int
    retention_segments_deleted: int
    serving: bool
    quotas: list[QuotaMetric]  # every client measured against a quota (pyk.server.quotas)
    started_ns: int  # when this shard process started (wall clock): its counters start from zero with it


class ShardMetrics:
    """The shard's own probes (event-loop lag, retention) and the snapshot of its state.

    Lifecycle: `start(loop)` once the loop runs (the lag probe), `stop()` at shutdown.
    """

    def __init__(self, shard_index: int) -> None:
        self.shard_index = shard_index
        self.loop_lag = Log2Histogram()
        self.retention_segments_deleted = 0
        self.started_ns = time.time_ns()
        self._probe: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._probe = asyncio.ensure_future(self._probe_lag())

    def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()

    async def _probe_lag(self) -> None:
        """How late a timer fires: the time the loop was busy when it was due."""
        while True:
            due = time.monotonic_ns() + int(_LAG_PROBE_S * 1e9)
            await asyncio.sleep(_LAG_PROBE_S)
            self.loop_lag.observe(time.monotonic_ns() - due)

    def snapshot(self, services: ShardServices, requests: dict[int, tuple[list[list[int]], list[int]]],
                 errors: dict[tuple[int, int], int], connections: int, group_commit: GroupCommit | None,
                 serving: bool) -> ShardSnapshot:
        replicas, logs = services.replicas, services.logs
        all_errors = dict(errors)
        for api, counter in ((0, replicas.produce_errors), (1, replicas.fetch_errors)):
            for code, n in counter.items():
                all_errors[(api, code)] = all_errors.get((api, code), 0) + n
        committed = [(group_id, topic, partition, om.offset)
                     for group_id, group in services.groups.groups.items()
                     for (topic, partition), om in group.offsets.items()]
        groups = {g.group_id: g.group_state for g in services.groups.list_groups([])}
        usage = resource.getrusage(resource.RUSAGE_SELF)  # the shard's threads (cleaner, writeback) included
        cleaner = logs.cleaner
        last = cleaner.last_stats if cleaner is not None else None
        return ShardSnapshot(
            shard=self.shard_index, requests=requests, errors=all_errors,
            partitions=partition_stats(logs, replicas, services.metadata),
            committed=committed, groups=groups, connections=connections,
            fetch_purgatory=replicas.waiting_fetches(),
            produce_purgatory=(group_commit.waiting if group_commit is not None else 0) + replicas.waiting_produces(),
            fsync=(group_commit.sync_latency if group_commit is not None else Log2Histogram()).snapshot(),
            loop_lag=self.loop_lag.snapshot(),
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            cleaner_passes=cleaner.passes if cleaner is not None else 0,
            cleaner_last_seconds=last.seconds if last is not None else 0.0,
            cleaner_last_bytes_read=last.bytes_read if last is not None else 0,
            cleaner_last_bytes_written=last.bytes_written if last is not None else 0,
            retention_segments_deleted=self.retention_segments_deleted, serving=serving,
            quotas=list(services.quotas.metrics(time.time_ns() // 1_000_000)), started_ns=self.started_ns,
        )


def partition_stats(logs: LogManager, replicas: ReplicaManager, metadata: MetadataView) -> list[PartitionStats]:
    """Every hosted log's stats; leadership and ISR from its Partition in a cluster (read here,
    at the scrape, so the request path pays nothing for them)."""
    out = []
    for plog in logs.all_logs():
        segments = list(plog.segments)
        moved = replicas.traffic.get(plog) or PartitionTraffic(plog.log_end_offset)
        part = replicas.partitions.get((plog.topic, plog.partition))
        leader, replication, in_sync = True, 1, 1
        if part is not None:
            info = metadata.get(plog.topic)
            adding = info.adding[plog.partition] if info is not None and plog.partition < len(info.adding) else []
            leader, in_sync = part.is_leader, len(part.isr)
            replication = sum(r not in adding for r in part.replicas)
        out.append(PartitionStats(
            topic=plog.topic, partition=plog.partition, size=sum(s.size for s in segments), segments=len(segments),
            log_start_offset=plog.log_start_offset, log_end_offset=plog.log_end_offset,
            high_watermark=plog.high_watermark, bytes_in=moved.bytes_in,
            messages_in=plog.log_end_offset - moved.attached_end_offset, bytes_out=moved.bytes_out,
            leader=leader, replicas=replication, in_sync_replicas=in_sync,
            min_insync_replicas=plog.config.min_insync_replicas))
    return out


def count_errors(errors: dict[tuple[int, int], int], api_key: int, body: object) -> None:
    """Adds every non-zero `error_code` of a decoded response body (any depth) to `errors`."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "error_code":
                if value:
                    errors[(api_key, value)] = errors.get((api_key, value), 0) + 1
            elif isinstance(value, (dict, list)):
                count_errors(errors, api_key, value)
    elif isinstance(body, list):
        for item in body:
            if isinstance(item, (dict, list)):
                count_errors(errors, api_key, item)
