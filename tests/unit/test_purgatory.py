"""FetchPurgatory: read_uncommitted waiters are credited by appends, read_committed ones by
bytes becoming stable (the last stable offset moving), each only by its own kind."""

from __future__ import annotations

import asyncio

from pyk.server.purgatory import LAST_STABLE, FetchPurgatory

KEY = ("t", 0)


def test_waiters_are_credited_by_their_isolation_level() -> None:
    async def run() -> tuple[bool, bool, bool]:
        purgatory = FetchPurgatory(asyncio.get_running_loop())
        uncommitted = asyncio.ensure_future(purgatory.wait([KEY], 100, 5000))
        committed = asyncio.ensure_future(purgatory.wait([KEY], 100, 5000, level=LAST_STABLE))
        late = asyncio.ensure_future(purgatory.wait([KEY], 100, 300, level=LAST_STABLE))
        await asyncio.sleep(0)
        purgatory.on_append(KEY, 150)  # appended inside an open transaction: not stable
        satisfied_uncommitted = await asyncio.wait_for(uncommitted, 2)
        assert not committed.done()
        purgatory.on_stable(KEY, 60)
        purgatory.on_stable(KEY, 60)  # credits add up to fetch.min.bytes
        satisfied_committed = await asyncio.wait_for(committed, 2)
        return satisfied_uncommitted, satisfied_committed, await late

    # `late` needed 100 bytes too and got them: it completes satisfied before its timeout.
    assert asyncio.run(run()) == (True, True, True)


def test_read_committed_waiter_times_out_without_stable_bytes() -> None:
    async def run() -> bool:
        purgatory = FetchPurgatory(asyncio.get_running_loop())
        waiter = asyncio.ensure_future(purgatory.wait([KEY], 1, 200, level=LAST_STABLE))
        await asyncio.sleep(0)
        purgatory.on_append(KEY, 10_000)
        return await asyncio.wait_for(waiter, 2)

    assert asyncio.run(run()) is False
