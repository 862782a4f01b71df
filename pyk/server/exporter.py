"""The orchestrator's HTTP endpoint (`metrics.listener`): Prometheus metrics, /health and /ready.

On each scrape of /metrics the orchestrator asks every shard for its `ShardSnapshot` over the
control channel (pyk.server.metrics) and this module renders them, summed over the shards where
Kafka reports one value per broker, with Kafka's metric names as the Prometheus JMX exporter
spells them (docs/metrics.md has the mapping).  A pull at scrape time keeps the shards free of
any exposition work and needs no shared files (prometheus-client's multiprocess mode writes an
mmap per metric and process on every update).

/health answers 200 while the orchestrator runs; /ready answers 200 once every shard has
recovered its logs and listens, and 503 before that or while a shard restarts.

Served by aiohttp on the orchestrator's event loop; the shards never see an HTTP request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.metrics import HISTOGRAM_BUCKETS, LOCAL_TIME, REQUEST_TIMES, ShardSnapshot

log = logging.getLogger("pyk.metrics")

SCRAPE_TIMEOUT_S = 5.0  # a shard that does not answer within this is reported down for the scrape
_EXPORTED_BUCKETS = 26  # le = 1 us .. 2**25 us (33.5 s), then +Inf


class MetricsSource(Protocol):
    """The orchestrator as the endpoint needs it."""

    @property
    def shard_count(self) -> int: ...

    async def collect_metrics(self, timeout: float) -> list[ShardSnapshot]: ...
    def is_ready(self) -> bool: ...
    def offline_partitions(self, serving: set[int]) -> int: ...
    def active_controller(self) -> bool: ...


async def start(address: tuple[str, int], source: MetricsSource) -> web.AppRunner:
    """Serves the endpoint on `address`; OSError when it cannot bind.  Stop with `cleanup()`."""

    async def metrics(_: web.Request) -> web.Response:
        snapshots = await source.collect_metrics(SCRAPE_TIMEOUT_S)
        registry = CollectorRegistry(auto_describe=False)
        offline = source.offline_partitions({s.shard for s in snapshots if s.serving})
        registry.register(_Snapshots(snapshots, source.shard_count, offline, source.active_controller()))
        ProcessCollector(namespace="pyk_orchestrator", registry=registry)
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def ready(_: web.Request) -> web.Response:
        if source.is_ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: shards starting or recovering\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, address[0], address[1]).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("metrics on http://%s:%d/metrics (and /health, /ready)", *address)
    return runner


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def request_name(api_key: int) -> str:
    """Kafka's `request` label: the API's name in camel case (Produce, ApiVersions, ...)."""
    try:
        return "".join(word.capitalize() for word in ApiKey(api_key).name.split("_"))
    except ValueError:
        return str(api_key)


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative Prometheus buckets of a log2-microsecond histogram (bucket b: dt_us < 2**b)."""
    out: list[tuple[str, float]] = []
    running = 0
    for b in range(_EXPORTED_BUCKETS):
        running += counts[b]
        out.append((repr((1 << b) / 1e6), running))
    out.append(("+Inf", sum(counts)))
    return out


def _add(into: list[int], counts: list[int]) -> None:
    for b in range(HISTOGRAM_BUCKETS):
        into[b] += counts[b]


class _Snapshots(Collector):
    """The metric families of one scrape's shard snapshots."""

    def __init__(self, snapshots: list[ShardSnapshot], shard_count: int, offline: int, controller: bool) -> None:
        self.snapshots = snapshots
        self.shard_count = shard_count
        self.offline = offline
        self.controller = controller

    def collect(self) -> Iterator[Metric]:
        shots = self.snapshots
        yield from self._shards(shots)
        yield from self._topics(shots)
        yield from self._requests(shots)
        yield from self._logs(shots)
        yield from self._groups(shots)
        yield from self._broker(shots)
        yield from self._quotas(shots)

    def _shards(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        up = GaugeMetricFamily("pyk_shard_up", "1 if the shard answered this scrape", labels=["shard"])
        answered = {s.shard for s in shots}
        for index in range(self.shard_count):
            up.add_metric([str(index)], 1.0 if index in answered else 0.0)
        cpu = CounterMetricFamily("pyk_shard_cpu_seconds", "CPU time of the shard process (user + system)",
                                  labels=["shard"])
        lag = HistogramMetricFamily("pyk_shard_event_loop_lag_seconds",
                                    "How late the shard's event loop ran a timer (sampled every 0.25 s)",
                                    labels=["shard"])
        for s in shots:
            cpu.add_metric([str(s.shard)], s.cpu_seconds)
            lag.add_metric([str(s.shard)], _buckets(s.loop_lag[0]), s.loop_lag[1] / 1e9)
        return [up, cpu, lag]

    def _topics(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        families = [
            ("bytesin", "bytes_in", "Bytes appended to the topic by producers (and coordinators)"),
            ("messagesin", "messages_in", "Records appended to the topic"),
            ("bytesout", "bytes_out", "Record bytes sent to consumers"),
        ]
        for name, attr, doc in families:
            per_topic: dict[str, int] = defaultdict(int)
            for s in shots:
                for p in s.partitions:
                    per_topic[p.topic] += getattr(p, attr)
            family = CounterMetricFamily(f"kafka_server_brokertopicmetrics_{name}", doc, labels=["topic"])
            for topic, value in sorted(per_topic.items()):
                family.add_metric([topic], value)
            yield family

    def _requests(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        merged: dict[int, tuple[list[list[int]], list[int]]] = {}
        for s in shots:
            for api, (counts, sums) in s.requests.items():
                into = merged.setdefault(api, ([[0] * HISTOGRAM_BUCKETS for _ in REQUEST_TIMES],
                                               [0] * len(REQUEST_TIMES)))
                for kind in range(len(REQUEST_TIMES)):
                    _add(into[0][kind], counts[kind])
                    into[1][kind] += sums[kind]
        requests = CounterMetricFamily("kafka_network_requestmetrics_requests", "Requests answered, per API",
                                       labels=["request"])
        times = [HistogramMetricFamily(f"kafka_network_requestmetrics_{kind}_seconds", doc, labels=["request"])
                 for kind, doc in zip(REQUEST_TIMES, (
                     "Time from the request's read to its response's last byte written",
                     "Time the read request waited behind earlier requests of the shard's loop",
                     "Time in the request's handler",
                     "Time the request was parked (long-poll fetch, group commit, coordinator)",
                     "Time the answer waited for the later requests of its socket read",
                     "Time from the response handed to the connection's sender to its last byte written"),
                     strict=True)]
        for api, (counts, sums) in sorted(merged.items()):
            name = request_name(api)
            requests.add_metric([name], sum(counts[LOCAL_TIME]))
            for kind, family in enumerate(times):
                family.add_metric([name], _buckets(counts[kind]), sums[kind] / 1e9)
        errors = CounterMetricFamily("kafka_network_requestmetrics_errors",
                                     "Error codes in responses, per API and error (partitions counted one by one)",
                                     labels=["request", "error"])
        merged_errors: dict[tuple[int, int], int] = defaultdict(int)
        for s in shots:
            for key, n in s.errors.items():
                merged_errors[key] += n
        for (api, code), n in sorted(merged_errors.items()):
            errors.add_metric([request_name(api), error_name(code)], n)
        return [requests, *times, errors]

    def _quotas(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        """Kafka's per-client quota metrics (MBeans kafka.server:type=Produce|Fetch|Request,user=..,
        client-id=..), one series per shard (each shard is a node enforcing its own)."""
        labels = ["shard", "user", "client_id"]
        rate_names = {"Produce": ("kafka_server_produce_byte_rate", "Bytes per second produced (quota'd clients)"),
                      "Fetch": ("kafka_server_fetch_byte_rate", "Bytes per second fetched (quota'd clients)"),
                      "Request": ("kafka_server_request_request_time",
                                  "Request handling time, percent of one thread (quota'd clients)")}
        rates = {t: GaugeMetricFamily(name, doc, labels=labels) for t, (name, doc) in rate_names.items()}
        throttles = {t: GaugeMetricFamily(f"kafka_server_{t.lower()}_throttle_time",
                                          f"Average throttle time (ms) of the throttled {t} responses",
                                          labels=labels) for t in rate_names}
        limit = GaugeMetricFamily("pyk_client_quota", "The quota a client is measured against (bytes per second, "
                                  "or percent of one thread)", labels=["shard", "quota_type", "user", "client_id"])
        for s in shots:
            for q in s.quotas:
                key = [str(s.shard), q.user, q.client_id]
                rates[q.quota_type].add_metric(key, q.rate)
                throttles[q.quota_type].add_metric(key, q.throttle_time_ms)
                limit.add_metric([str(s.shard), q.quota_type, q.user, q.client_id], q.quota)
        return [*rates.values(), *throttles.values(), limit]

    def _logs(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        labels = ["topic", "partition"]
        size = GaugeMetricFamily("kafka_log_log_size", "Bytes of the partition's segments", labels=labels)
        segments = GaugeMetricFamily("kafka_log_log_numlogsegments", "Segments of the partition", labels=labels)
        start = GaugeMetricFamily("kafka_log_log_logstartoffset", "First offset of the partition", labels=labels)
        end = GaugeMetricFamily("kafka_log_log_logendoffset", "Next offset of the partition", labels=labels)
        hwm = GaugeMetricFamily("kafka_cluster_partition_highwatermark", "High watermark of the partition",
                                labels=labels)
        for s in shots:
            for p in s.partitions:
                key = [p.topic, str(p.partition)]
                size.add_metric(key, p.size)
                segments.add_metric(key, p.segments)
                start.add_metric(key, p.log_start_offset)
                end.add_metric(key, p.log_end_offset)
                hwm.add_metric(key, p.high_watermark)
        return [size, segments, start, end, hwm]

    def _groups(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        hwm = {(p.topic, p.partition): p.high_watermark for s in shots for p in s.partitions}
        labels = ["consumergroup", "topic", "partition"]
        current = GaugeMetricFamily("kafka_consumergroup_current_offset", "Committed offset of the group",
                                    labels=labels)
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "High watermark minus the group's committed offset",
                                labels=labels)
        for s in shots:
            for group, topic, partition, offset in s.committed:
                key = [group, topic, str(partition)]
                current.add_metric(key, offset)
                if (topic, partition) in hwm:
                    lag.add_metric(key, max(hwm[(topic, partition)] - offset, 0))
        by_state: dict[str, int] = defaultdict(int)
        for s in shots:
            for state in s.groups.values():
                by_state[state] += 1
        groups = GaugeMetricFamily("kafka_coordinator_group_groupmetadatamanager_numgroups",
                                   "Groups hosted, by state", labels=["state"])
        for state, n in sorted(by_state.items()):
            groups.add_metric([state], n)
        return [current, lag, groups]

    def _broker(self, shots: list[ShardSnapshot]) -> Iterable[Metric]:
        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            return family

        partitions = sum(len(s.partitions) for s in shots)
        led = [p for s in shots for p in s.partitions if p.leader]
        purgatory = GaugeMetricFamily("kafka_server_delayedoperationpurgatory_purgatorysize",
                                      "Requests waiting: Fetch long polls, Produce answers waiting for their fsync "
                                      "or (per partition) for the in-sync replicas",
                                      labels=["delayedoperation"])
        purgatory.add_metric(["Fetch"], sum(s.fetch_purgatory for s in shots))
        purgatory.add_metric(["Produce"], sum(s.produce_purgatory for s in shots))
        fsync_counts = [0] * HISTOGRAM_BUCKETS
        for s in shots:
            _add(fsync_counts, s.fsync[0])
        fsync = HistogramMetricFamily("kafka_log_logflushstats_logflush_seconds",
                                      "Group-commit rounds: fdatasync of every log flushed together")
        fsync.add_metric([], _buckets(fsync_counts), sum(s.fsync[1] for s in shots) / 1e9)
        connections = GaugeMetricFamily("kafka_server_socket_server_metrics_connection_count",
                                        "Open client connections", labels=["shard"])
        cleaner_passes = CounterMetricFamily("pyk_log_cleaner_passes", "Compaction passes run", labels=["shard"])
        recopy = GaugeMetricFamily("kafka_log_logcleaner_cleaner_recopy_percent",
                                   "Bytes written / bytes read by the last compaction pass, percent",
                                   labels=["shard"])
        retention = CounterMetricFamily("pyk_log_retention_segments_deleted",
                                        "Segments deleted by retention (time, size, log start)", labels=["shard"])
        for s in shots:
            shard = [str(s.shard)]
            connections.add_metric(shard, s.connections)
            cleaner_passes.add_metric(shard, s.cleaner_passes)
            recopy.add_metric(shard, 100.0 * s.cleaner_last_bytes_written / s.cleaner_last_bytes_read
                              if s.cleaner_last_bytes_read else 0.0)
            retention.add_metric(shard, s.retention_segments_deleted)
        return [
            gauge("kafka_server_replicamanager_partitioncount", "Partitions this broker hosts (led or followed)",
                  partitions),
            gauge("kafka_server_replicamanager_leadercount", "Partitions this broker leads", len(led)),
            gauge("kafka_server_replicamanager_underreplicatedpartitions",
                  "Led partitions with fewer in-sync replicas than replicas",
                  sum(p.in_sync_replicas < p.replicas for p in led)),
            gauge("kafka_server_replicamanager_underminisrpartitioncount",
                  "Led partitions with fewer in-sync replicas than min.insync.replicas",
                  sum(p.in_sync_replicas < p.min_insync_replicas for p in led)),
            gauge("kafka_server_replicamanager_atminisrpartitioncount",
                  "Led partitions with exactly min.insync.replicas in-sync replicas",
                  sum(p.in_sync_replicas == p.min_insync_replicas for p in led)),
            gauge("kafka_controller_kafkacontroller_offlinepartitionscount",
                  "On the controller: partitions with no live leader (a single host: on a shard not serving)",
                  self.offline),
            gauge("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller",
                  1 if self.controller else 0),
            gauge("kafka_log_logcleaner_max_clean_time_secs", "Duration of the longest last compaction pass",
                  max((s.cleaner_last_seconds for s in shots), default=0.0)),
            purgatory, fsync, connections, cleaner_passes, recopy, retention,
        ]
