"""Replication throttles (Kafka's ReplicationQuotaManager, KIP-73): a node's bytes/s bound on the
replication of the partitions an operator marked, used by reassignments so that moving a replica
does not starve clients of disk and network.

Two quotas per node, each with Kafka's names:
* leader: `leader.replication.throttled.rate` (dynamic broker config, bytes/s) over the
  partitions whose topic lists `<partition>:<this node>` (or `*`) in
  `leader.replication.throttled.replicas`; the leader sends no bytes of such a partition to a
  follower outside the ISR while the rate is exceeded (ReplicaManager.read), and counts what it
  sends of them;
* follower: `follower.replication.throttled.rate` over `follower.replication.throttled.replicas`;
  the follower's fetcher leaves such a partition out of its fetches while it is not caught up and
  the rate is exceeded, and counts what it appends of them (pyk.server.replica_fetcher).

The rate is Kafka's sampled Rate: `replication.quota.window.num` samples of
`replication.quota.window.size.seconds`, the window counted as at least (num - 1) samples long,
so a new move may send (num - 1) x window x rate bytes at once before the bound bites.  Replication
of partitions not listed, and of in-sync replicas, is never held back.

Owned by the shard's event loop; the broker calls `update` with each snapshot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from pyk.configdef import ALL_REPLICAS, LONG_MAX
from pyk.server.metadata_store import TopicInfo


def throttled_partitions(value: str, node_id: int) -> frozenset[int] | None:
    """The partitions a `*.replication.throttled.replicas` value throttles on `node_id` (None:
    all of them; Kafka's parseThrottledPartitions).  The value was validated as a topic config."""
    value = value.strip()
    if value == ALL_REPLICAS:
        return None
    out = set()
    for item in value.split(","):
        partition, _, node = item.strip().partition(":")
        if node and int(node) == node_id:
            out.add(int(partition))
    return frozenset(out)


class ReplicationQuota:
    """One node's leader or follower throttle (see module docstring)."""

    def __init__(self, node_id: int, replicas_key: str, samples: int, window_s: int) -> None:
        self.node_id = node_id
        self.replicas_key = replicas_key  # the topic config listing the throttled replicas
        self.rate_limit = LONG_MAX  # bytes/s
        self._samples_max = samples
        self._window_ms = window_s * 1000
        self._samples: deque[list[int]] = deque()  # [start ms, bytes] per window, oldest first
        self._throttled: dict[str, frozenset[int] | None] = {}  # topic -> partitions (None: all)

    def update(self, rate_limit: int, topics: Iterable[TopicInfo]) -> None:
        """The node's rate and the topics' throttled replicas from the current metadata."""
        self.rate_limit = rate_limit
        throttled = {}
        for info in topics:
            value = info.configs.get(self.replicas_key)
            if value:
                partitions = throttled_partitions(value, self.node_id)
                if partitions is None or partitions:
                    throttled[info.name] = partitions
        self._throttled = throttled

    def is_throttled(self, topic: str, partition: int) -> bool:
        if topic not in self._throttled:
            return False
        partitions = self._throttled[topic]
        return partitions is None or partition in partitions

    def record(self, nbytes: int, now_ms: int | None = None) -> None:
        now_ms = int(time.monotonic() * 1000) if now_ms is None else now_ms
        self._purge(now_ms)
        if not self._samples or now_ms >= self._samples[-1][0] + self._window_ms:
            self._samples.append([now_ms, 0])
            if len(self._samples) > self._samples_max:
                self._samples.popleft()
        self._samples[-1][1] += nbytes

    def rate(self, now_ms: int | None = None) -> float:
        """Bytes/s over the retained samples (Kafka's Rate.measure)."""
        now_ms = int(time.monotonic() * 1000) if now_ms is None else now_ms
        return self._total(now_ms) * 1000 / self._window_size(now_ms)

    def is_quota_exceeded(self, now_ms: int | None = None) -> bool:
        return self.rate_limit < LONG_MAX and self.rate(now_ms) > self.rate_limit

    def delay_ms(self, now_ms: int | None = None) -> int:
        """How long until the rate is back at the bound if nothing more is sent (Kafka's
        quota throttle time: window x (rate - bound) / bound)."""
        now_ms = int(time.monotonic() * 1000) if now_ms is None else now_ms
        if self.rate_limit >= LONG_MAX or self.rate_limit <= 0:
            return 0 if self.rate_limit >= LONG_MAX else self._window_ms
        excess = self._total(now_ms) * 1000 / self.rate_limit - self._window_size(now_ms)
        return max(0, int(excess))

    def _total(self, now_ms: int) -> int:
        self._purge(now_ms)
        return sum(s[1] for s in self._samples)

    def _window_size(self, now_ms: int) -> int:
        """The elapsed time the rate divides by: since the oldest sample, at least (samples - 1)
        windows (Kafka's Rate.windowSize)."""
        elapsed = now_ms - self._samples[0][0] if self._samples else 0
        full, least = elapsed // self._window_ms, self._samples_max - 1
        if full < least:
            elapsed += (least - full) * self._window_ms
        return max(elapsed, 1)

    def _purge(self, now_ms: int) -> None:
        """Samples that started samples x window ago or more are dropped (purgeObsoleteSamples)."""
        horizon = now_ms - self._samples_max * self._window_ms
        while self._samples and self._samples[0][0] <= horizon:
            self._samples.popleft()
