"""The leader side of replication through the ReplicaManager (over real logs): follower fetch
positions move the high watermark, consumers read only below it, a caught-up follower is
proposed for the ISR, and acks=all waiters get NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
fell below min.insync.replicas by the time their records were committed."""

from __future__ import annotations

import asyncio
import uuid

from pyk.errors import ErrorCode
from pyk.log.config import LogConfig
from pyk.log.manager import LogManager
from pyk.server.metadata_store import MetadataView, TopicInfo
from pyk.server.replica_manager import FetchParams, FetchPartition, ReplicaManager
from pyk.server.replication_quota import ReplicationQuota, throttled_partitions
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000
LEADER, FOLLOWER = 1, 2


def _setup(tmp_path, isr: list[int],
           quota: ReplicationQuota | None = None) -> tuple[ReplicaManager, list[tuple[list[int], int]]]:
    logs = LogManager([str(tmp_path)], LogConfig().with_overrides({"message.timestamp.before.max.ms": str(1 << 62),
                                                                   "min.insync.replicas": "2"}))
    manager = ReplicaManager(logs, MetadataView(), LEADER, LEADER)
    written: list[tuple[list[int], int]] = []

    async def alter_isr(topic: str, partition: int, leader: int, leader_epoch: int, isr: list[int],
                        version: int) -> int:
        written.append((isr, version))
        return version + 1

    manager.enable_replication(alter_isr, 30000,
                               quota or ReplicationQuota(LEADER, "leader.replication.throttled.replicas", 11, 1))
    manager.make_replica(logs.create("t", 0), LEADER, 3, [LEADER, FOLLOWER], isr, version=7)
    return manager, written


def _append(manager: ReplicaManager, count: int) -> int:
    plog = manager.logs.get("t", 0)
    return manager.append_to_log(plog, memoryview(build_batch([Record(b"x", timestamp=NOW)] * count)), NOW).last_offset


def _fetch(manager: ReplicaManager, offset: int, replica_id: int = -1):
    params = FetchParams(max_bytes=1 << 20, min_bytes=1, max_wait_ms=0, replica_id=replica_id)
    return manager.read(params, [FetchPartition("t", 0, offset, 1 << 20)]).partitions[0]


def test_the_high_watermark_follows_the_isr_and_bounds_consumers(tmp_path) -> None:
    async def run() -> None:
        manager, _ = _setup(tmp_path, [LEADER, FOLLOWER])
        last = _append(manager, 5)
        assert _fetch(manager, 0).records is None  # nothing committed yet
        follower_read = _fetch(manager, 0, replica_id=FOLLOWER)
        assert follower_read.records is not None and follower_read.high_watermark == 0
        assert _fetch(manager, last + 1, replica_id=FOLLOWER).high_watermark == last + 1  # it has them all now
        consumer = _fetch(manager, 0)
        assert consumer.high_watermark == last + 1 and consumer.records is not None
        manager.stop()
        manager.logs.close()

    asyncio.run(run())


def test_a_caught_up_follower_is_proposed_for_the_isr(tmp_path) -> None:
    async def run() -> None:
        manager, written = _setup(tmp_path, [LEADER])
        last = _append(manager, 3)
        _fetch(manager, last + 1, replica_id=FOLLOWER)
        await asyncio.sleep(0)  # the ISR write runs as a task
        assert written == [([LEADER, FOLLOWER], 7)]
        assert manager.partitions[("t", 0)].isr == [LEADER, FOLLOWER]
        manager.stop()
        manager.logs.close()

    asyncio.run(run())


def test_acks_all_after_the_isr_shrank_below_min_insync(tmp_path) -> None:
    async def run() -> None:
        manager, _ = _setup(tmp_path, [LEADER, FOLLOWER])
        part = manager.partitions[("t", 0)]
        last = _append(manager, 2)
        waiter = part.wait_for(last + 1, asyncio.get_running_loop(), min_isr=2)
        assert not waiter.done()
        part.isr = [LEADER]  # the follower left the ISR (the ZooKeeper write succeeded)
        _fetch(manager, 0, replica_id=FOLLOWER)  # any fetch re-checks the high watermark
        assert await waiter == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        manager.stop()
        manager.logs.close()

    asyncio.run(run())


def test_the_leader_throttle_holds_back_out_of_sync_followers_only(tmp_path) -> None:
    """leader.replication.throttled.replicas=0:<leader> with a rate already exceeded: the
    out-of-sync follower gets the offsets but no bytes; once in the ISR it gets them."""
    async def run() -> None:
        quota = ReplicationQuota(LEADER, "leader.replication.throttled.replicas", 2, 1)
        quota.update(100, [TopicInfo("t", uuid.uuid4(), 1, {"leader.replication.throttled.replicas": f"0:{LEADER}"})])
        manager, _ = _setup(tmp_path, [LEADER], quota)
        last = _append(manager, 3)
        assert quota.is_throttled("t", 0) and not quota.is_throttled("u", 0)
        quota.record(1000)
        held = _fetch(manager, 0, replica_id=FOLLOWER)
        assert held.records is None and held.high_watermark == last + 1
        assert _fetch(manager, 0).records is not None  # consumers are never throttled
        manager.partitions[("t", 0)].isr = [LEADER, FOLLOWER]
        assert _fetch(manager, 0, replica_id=FOLLOWER).records is not None
        quota.update(10**9, [])  # the throttle removed
        manager.partitions[("t", 0)].isr = [LEADER]
        assert _fetch(manager, 0, replica_id=FOLLOWER).records is not None
        manager.stop()
        manager.logs.close()

    asyncio.run(run())


def test_replication_quota_rate_is_kafkas_sampled_rate() -> None:
    quota = ReplicationQuota(7, "follower.replication.throttled.replicas", 3, 1)
    assert not quota.is_quota_exceeded(0)  # no rate set: never exceeded
    quota.update(1000, [TopicInfo("t", uuid.uuid4(), 4, {"follower.replication.throttled.replicas": "1:7, 2:8,3:7"})])
    assert [quota.is_throttled("t", p) for p in range(4)] == [False, True, False, True]
    quota.record(1500, 0)
    assert quota.rate(0) == 750  # the window counts as at least (3 - 1) samples of 1 s
    assert not quota.is_quota_exceeded(0)
    quota.record(1100, 1500)  # 2600 bytes over 1.5 s, counted as 2.5 s
    assert quota.rate(1500) == 1040 and quota.is_quota_exceeded(1500)
    assert quota.rate(10_000) == 0  # the samples expired
    assert throttled_partitions("*", 7) is None and throttled_partitions("0:7,1:8", 8) == frozenset({1})
    quota.record(3000, 10_000)
    assert quota.delay_ms(10_000) == 1000  # 3000 bytes at 1000 B/s: 3 s, of which 2 s count already


def test_a_replica_removed_by_a_reassignment_is_not_brought_back_into_the_isr(tmp_path) -> None:
    """The snapshot that completes a move drops the follower; its last fetch, still in flight,
    must not propose it for the ISR again."""
    async def run() -> None:
        manager, written = _setup(tmp_path, [LEADER, FOLLOWER])
        last = _append(manager, 2)
        manager.make_replica(manager.logs.get("t", 0), LEADER, 3, [LEADER], [LEADER], version=8)
        _fetch(manager, last + 1, replica_id=FOLLOWER)
        await asyncio.sleep(0)
        assert written == [] and manager.partitions[("t", 0)].isr == [LEADER]
        manager.stop()
        manager.logs.close()

    asyncio.run(run())
