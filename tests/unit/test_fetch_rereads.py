"""A Fetch woken from its long poll re-reads only the partitions that changed while it was
parked (ReplicaManager.read with the first pass and the changed keys), and the answer is still
what a full re-read gives: KIP-74 byte limits in request order included.  It is parked as soon
as the read found too little, so an append right after that read wakes it."""

from __future__ import annotations

import asyncio

import pytest

from pyk.log.config import LogConfig
from pyk.log.manager import LogManager
from pyk.server.metadata_store import MetadataView
from pyk.server.purgatory import HIGH_WATERMARK, FetchPurgatory
from pyk.server.replica_manager import FetchParams, FetchPartition, FetchResult, ReplicaManager
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000


@pytest.fixture
def replicas(tmp_path):
    logs = LogManager([str(tmp_path)], LogConfig().with_overrides({"message.timestamp.before.max.ms": str(1 << 62)}))
    manager = ReplicaManager(logs, MetadataView(), 0, 0)
    for p in range(3):
        manager.attach(logs.create("t", p), 0, group_commit_flushes=False)
    yield manager
    logs.close()


def _append(replicas: ReplicaManager, partition: int, size: int) -> None:
    plog = replicas.logs.get("t", partition)
    replicas.append_to_log(plog, memoryview(build_batch([Record(b"x" * size, timestamp=NOW)])), NOW)


def _shape(result: FetchResult) -> list[tuple[int, int | None]]:
    return [(d.high_watermark, None if d.records is None else d.records.size) for d in result.partitions]


def test_unchanged_partitions_keep_their_first_answer(replicas):
    # Partition limits well below the request's (librdkafka: 1 MiB of 50 MiB): the limits of
    # the partitions after a changed one stay the same, so they keep their answers too.
    _append(replicas, 0, 50)
    params = FetchParams(max_bytes=10_000, min_bytes=1000, max_wait_ms=500)
    parts = [FetchPartition("t", p, 0, 1000) for p in range(3)]
    first = replicas.read(params, parts)
    _append(replicas, 1, 100)
    again = replicas.read(params, parts, first, {("t", 1)})
    assert again.partitions[0] is first.partitions[0]
    assert again.partitions[1] is not first.partitions[1]
    assert again.partitions[2] is first.partitions[2]
    assert _shape(again) == _shape(replicas.read(params, parts))
    assert again.bytes_read == first.bytes_read + again.partitions[1].records.size


def test_a_changed_partition_ahead_moves_the_limits_of_the_others(replicas):
    # Partition 2 had data in the first pass (it was the first with data: min_one_message);
    # partition 0 ahead of it gets data while parked, so 2 is re-read under the new limits.
    _append(replicas, 2, 300)
    params = FetchParams(max_bytes=400, min_bytes=1000, max_wait_ms=500)
    parts = [FetchPartition("t", p, 0, 10_000) for p in range(3)]
    first = replicas.read(params, parts)
    _append(replicas, 0, 300)
    again = replicas.read(params, parts, first, {("t", 0)})
    assert again.partitions[2] is not first.partitions[2]
    assert _shape(again) == _shape(replicas.read(params, parts))
    assert again.bytes_read <= params.max_bytes or again.partitions[0].records.size > params.max_bytes


def test_the_purgatory_reports_what_changed() -> None:
    async def run() -> tuple[bool, set]:
        purgatory = FetchPurgatory(asyncio.get_running_loop())
        changed: set = set()
        waiter = asyncio.ensure_future(purgatory.wait([("t", 0), ("t", 1), ("t", 2)], 100, 5000, HIGH_WATERMARK, changed))
        await asyncio.sleep(0)
        purgatory.on_append(("t", 1), 10)  # not enough yet, but t-1 changed
        purgatory.on_stable(("t", 2), 10)  # a read_committed credit: still a change of t-2
        purgatory.on_append(("u", 0), 500)  # not a key of this fetch
        purgatory.on_append(("t", 1), 90)
        return await asyncio.wait_for(waiter, 2), changed

    assert asyncio.run(run()) == (True, {("t", 1), ("t", 2)})


def test_an_append_right_after_the_read_wakes_the_parked_fetch(replicas):
    # The fetch handler parks in the read's own callback; an append before the handler's
    # coroutine first runs (another connection's produce, in the same loop turn) must credit it,
    # not leave it to sit out max_wait_ms (for a follower: stalling acks=all for that long).
    async def run() -> bool:
        replicas.start(asyncio.get_running_loop(), None, None)
        params = FetchParams(max_bytes=10_000, min_bytes=1, max_wait_ms=60_000)
        parts = [FetchPartition("t", 0, 0, 1000)]
        first = replicas.read(params, parts)
        assert first.bytes_read == 0
        changed: set = set()
        parked = replicas.wait_for_data(params, [("t", 0)], 1, changed)
        _append(replicas, 0, 50)  # no await in between: nothing has run on the loop yet
        satisfied = await asyncio.wait_for(parked, 10)  # well before max_wait_ms
        assert changed == {("t", 0)}
        return satisfied

    assert asyncio.run(run()) is True
