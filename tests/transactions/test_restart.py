"""State reloaded at start-up: an Ongoing transaction and its pending TxnOffsetCommit survive a
kill -9 and restart of the broker, and the markers written afterwards still commit (or drop) the
offsets; a committed transaction's offsets come back committed (the replay of
`__consumer_offsets` honours the markers)."""

from __future__ import annotations

import asyncio

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.helpers import create_topic
from tests.transactions.test_wire import Session, run


def _commit_body(tid: str, group: str, pid: int, epoch: int, topic: str, offset: int) -> dict:
    return {"transactional_id": tid, "group_id": group, "producer_id": pid, "producer_epoch": epoch,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                       "committed_metadata": None}]}]}


async def _fetch(s: Session, group: str, topic: str) -> tuple[int, int]:
    got = await s.group.request(ApiKey.OFFSET_FETCH, 7, {
        "group_id": group, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": True})
    part = got["topics"][0]["partitions"][0]
    return part["error_code"], part["committed_offset"]


async def _until_stable(s: Session, group: str, topic: str) -> tuple[int, int]:
    for _ in range(200):
        code, offset = await _fetch(s, group, topic)
        if code != ErrorCode.UNSTABLE_OFFSET_COMMIT:
            return code, offset
        await asyncio.sleep(0.05)
    raise AssertionError("offsets stayed unstable")


def test_open_transaction_and_pending_offsets_survive_kill9(broker_factory, topic):
    b = broker_factory()
    create_topic(b.bootstrap, topic, 2)
    tid, group = f"{topic}-tx", f"{topic}-g"
    ids: dict[str, int] = {}

    async def before(s: Session) -> None:
        r = await s.init(tid)
        pid, epoch = ids["pid"], ids["epoch"] = r["producer_id"], r["producer_epoch"]
        # A first transaction commits offset 10.
        for offset, commit in ((10, True), (20, None)):
            assert (await s.add(tid, pid, epoch, {topic: [0, 1]})) == {(topic, 0): 0, (topic, 1): 0}
            added = await s.txn.request(ApiKey.ADD_OFFSETS_TO_TXN, 3, {
                "transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": group})
            assert added["error_code"] == ErrorCode.NONE
            resp = await s.group.request(ApiKey.TXN_OFFSET_COMMIT, 3, _commit_body(tid, group, pid, epoch, topic, offset))
            assert resp["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NONE
            if commit:
                assert await s.end(tid, pid, epoch, True) == ErrorCode.NONE
                assert await _until_stable(s, group, topic) == (ErrorCode.NONE, 10)
        # The second one (offset 20) is left open.
        assert await _fetch(s, group, topic) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)

    run(b.bootstrap, tid, group, before)
    b.kill9()
    b.start()

    async def after(s: Session) -> None:
        state = await s.describe(tid)
        assert (state["transaction_state"], state["producer_id"], state["producer_epoch"]) == (
            "Ongoing", ids["pid"], ids["epoch"])
        assert {t["topic"] for t in state["topics"]} == {topic, "__consumer_offsets"}
        assert await _fetch(s, group, topic) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)  # still pending
        assert await s.end(tid, ids["pid"], ids["epoch"], True) == ErrorCode.NONE
        assert await _until_stable(s, group, topic) == (ErrorCode.NONE, 20)

    run(b.bootstrap, tid, group, after)
    b.stop()
    b.start()

    async def reloaded(s: Session) -> None:
        assert await _fetch(s, group, topic) == (ErrorCode.NONE, 20)  # the marker is honoured at load
        assert (await s.describe(tid))["transaction_state"] == "CompleteCommit"

    run(b.bootstrap, tid, group, reloaded)


def test_idle_transactional_id_expires_and_stays_gone(broker_factory, topic):
    b = broker_factory(transactional_id_expiration_ms=1000,
                       transaction_remove_expired_transaction_cleanup_interval_ms=200)
    create_topic(b.bootstrap, topic, 1)
    tid = f"{topic}-tx"

    async def expire(s: Session) -> None:
        r = await s.init(tid)
        assert r["error_code"] == ErrorCode.NONE
        assert (await s.describe(tid))["transaction_state"] == "Empty"
        for _ in range(100):
            if (await s.describe(tid))["error_code"] == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the idle transactional id did not expire")

    run(b.bootstrap, tid, f"{topic}-g", expire)
    b.kill9()
    b.start()

    async def gone(s: Session) -> None:
        assert (await s.describe(tid))["error_code"] == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND  # the tombstone
        r = await s.init(tid)  # a new producer id: the old one is forgotten
        assert (r["error_code"], r["producer_epoch"]) == (ErrorCode.NONE, 0)

    run(b.bootstrap, tid, f"{topic}-g", gone)
