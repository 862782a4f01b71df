"""The leader side of replication through the ReplicaManager (over real logs): follower fetch
positions move the high watermark, consumers read only below it, a caught-up follower is
proposed for the ISR, and acks=all waiters get NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
fell below min.insync.replicas by the time their records were committed."""

from __future__ import annotations

import asyncio

from pyk.errors import ErrorCode
from pyk.log.config import LogConfig
from pyk.log.manager import LogManager
from pyk.server.metadata_store import MetadataView
from pyk.server.replica_manager import FetchParams, FetchPartition, ReplicaManager
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000
LEADER, FOLLOWER = 1, 2


def _setup(tmp_path, isr: list[int]) -> tuple[ReplicaManager, list[tuple[list[int], int]]]:
    logs = LogManager([str(tmp_path)], LogConfig().with_overrides({"message.timestamp.before.max.ms": str(1 << 62),
                                                                   "min.insync.replicas": "2"}))
    manager = ReplicaManager(logs, MetadataView(), LEADER, LEADER)
    written: list[tuple[list[int], int]] = []

    async def alter_isr(topic: str, partition: int, leader: int, leader_epoch: int, isr: list[int],
                        version: int) -> int:
        written.append((isr, version))
        return version + 1

    manager.enable_replication(alter_isr, 30000)
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
