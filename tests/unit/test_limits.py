"""pyk/server/limits.py in process: the memory pool's grants and the connection counts (the
behaviour over real sockets is tests/adversity/test_limits.py's)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pyk.server.limits import ConnectionQuotas, MemoryPool


def test_pool_grants_while_room_is_left_then_in_arrival_order() -> None:
    loop = asyncio.new_event_loop()
    try:
        pool = MemoryPool(loop, 100)
        granted: list[tuple[str, int]] = []
        assert pool.reserve(60, lambda n: granted.append(("a", n)))
        assert pool.reserve(60, lambda n: granted.append(("b", n)))  # room was left: passes the cap once
        assert pool.used == 120
        def waiter(name: str) -> Callable[[int], None]:
            return lambda n: granted.append((name, n))

        c, d, e = waiter("c"), waiter("d"), waiter("e")
        assert not pool.reserve(10, c) and not pool.reserve(500, d) and not pool.reserve(1, e)
        pool.cancel(e)  # its connection closed while waiting
        pool.release(60)  # 60 used: room for the first waiter, then (70 < 100) the next
        loop.run_until_complete(asyncio.sleep(0))
        assert granted == [("c", 10), ("d", 500)] and pool.used == 570
        pool.release(570)
        assert pool.used == 0 and pool.reserve(1, c)
    finally:
        loop.close()


def test_pool_without_capacity_never_waits() -> None:
    loop = asyncio.new_event_loop()
    try:
        for capacity in (0, -1):
            pool = MemoryPool(loop, capacity)
            assert all(pool.reserve(1 << 30, lambda n: None) for _ in range(10))
    finally:
        loop.close()


def test_quotas_count_per_address_with_overrides() -> None:
    quotas = ConnectionQuotas(3, 1, {"127.0.0.2": 2, "localhost": 0})
    assert quotas.overrides["127.0.0.1"] == 0  # a host name resolves to its addresses
    assert quotas.refusal("127.0.0.1") is not None
    assert quotas.refusal("10.0.0.1") is None
    quotas.opened("10.0.0.1")
    assert "maximum of 1 connections (max.connections.per.ip)" in (quotas.refusal("10.0.0.1") or "")
    quotas.opened("127.0.0.2")
    assert quotas.refusal("127.0.0.2") is None
    quotas.opened("127.0.0.2")
    assert "(max.connections.per.ip.overrides)" in (quotas.refusal("127.0.0.2") or "")
    assert quotas.full
    quotas.closed("127.0.0.2")
    assert not quotas.full and quotas.by_address == {"10.0.0.1": 1, "127.0.0.2": 1}
