"""Fetch and ListOffsets under read_committed against `pyk serve`, with transactional batches
produced raw (tests/adversity/wire.py).

Markers cannot be written over the wire until WriteTxnMarkers exists (the transaction
coordinator's side of issue 7); here the transaction stays open, which is what bounds
read_committed: the last stable offset sits at its first offset, read_uncommitted still sees
everything, and librdkafka's read_committed consumer stops there.  Commit and abort markers are
covered in-process by tests/log/test_transactions.py.

The transactional batches go in a Produce without a transactional_id: pyk's Produce handler does
not accept transactional ids until the coordinator exists.  Once it does (and checks that the
partition was added to the transaction, as Kafka does), these produces go through
InitProducerId/AddPartitionsToTxn first.
"""

from __future__ import annotations

import time

from tests.adversity.wire import API_FETCH, Reader, WireClient, fetch_body, parse_fetch, record_batch
from tests.helpers import BrokerProcess, confluent_consume, create_topic, wait_for

INVALID_REQUEST, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE = 42, 47, 48
TXN_ATTRIBUTE = 0x10


def _open_transaction(client: WireClient, topic: str) -> tuple[int, int]:
    """plain 0-1, transactional 2-3 (left open), plain 4-5; returns (producer id, epoch)."""
    error, pid, epoch = client.init_producer_id()
    assert error == 0
    assert client.produce(topic, 0, record_batch([(None, b"a"), (None, b"b")])).base_offset == 0
    txn = record_batch([(None, b"t1"), (None, b"t2")], producer_id=pid, producer_epoch=epoch, base_sequence=0,
                       transactional=True)
    result = client.produce(topic, 0, txn)
    assert (result.error_code, result.base_offset) == (0, 2)
    assert client.produce(topic, 0, record_batch([(None, b"c"), (None, b"d")])).base_offset == 4
    return pid, epoch


def test_read_committed_bounds_and_offsets(broker, topic):
    create_topic(broker.bootstrap, topic)
    with WireClient(broker.bootstrap) as client:
        pid, epoch = _open_transaction(client, topic)
        committed = client.fetch(topic, 0, 0, isolation_level=1)
        assert committed.error_code == 0
        assert (committed.high_watermark, committed.last_stable_offset) == (6, 2)
        assert committed.batches() == [(0, 1, 0)]
        assert committed.aborted_transactions == []  # read_committed: a list, empty
        uncommitted = client.fetch(topic, 0, 0, isolation_level=0)
        assert (uncommitted.high_watermark, uncommitted.last_stable_offset) == (6, 2)
        assert uncommitted.batches() == [(0, 1, 0), (2, 3, TXN_ATTRIBUTE), (4, 5, 0)]
        assert uncommitted.aborted_transactions is None
        # At the LSO a read_committed fetch has nothing to return, not an error.
        at_lso = client.fetch(topic, 0, 2, isolation_level=1)
        assert (at_lso.error_code, at_lso.records) == (0, b"")
        # ListOffsets v2: "latest" is the LSO under read_committed, the high watermark otherwise.
        assert client.list_offset(topic, 0, -1, isolation_level=1) == (0, 2)
        assert client.list_offset(topic, 0, -1, isolation_level=0) == (0, 6)
        assert client.list_offset(topic, 0, -1) == (0, 6)


def test_transaction_state_errors_over_the_wire(broker, topic):
    create_topic(broker.bootstrap, topic)
    with WireClient(broker.bootstrap) as client:
        pid, epoch = _open_transaction(client, topic)
        plain = record_batch([(None, b"x")], producer_id=pid, producer_epoch=epoch, base_sequence=2)
        assert client.produce(topic, 0, plain).error_code == INVALID_TXN_STATE
        bumped = record_batch([(None, b"y")], producer_id=pid, producer_epoch=epoch + 1, base_sequence=0,
                              transactional=True)
        assert client.produce(topic, 0, bumped).error_code == 0
        stale = record_batch([(None, b"z")], producer_id=pid, producer_epoch=epoch, base_sequence=2,
                             transactional=True)
        assert client.produce(topic, 0, stale).error_code == INVALID_PRODUCER_EPOCH
        assert client.fetch(topic, 0, 0, isolation_level=1).last_stable_offset == 2


def _wait_parked(b: BrokerProcess, topic: str) -> None:
    """Until the broker logs that a read_committed fetch on `topic`-0 parked (needs DEBUG)."""
    wait_for(lambda: f"read_committed=True, on [('{topic}', 0)]" in b.log_text(), timeout=20,
             what=f"a read_committed fetch of {topic}-0 to park")


def test_read_committed_long_poll_ignores_unstable_appends(broker_factory, topic):
    broker = broker_factory(log_level="DEBUG")
    create_topic(broker.bootstrap, topic)
    with WireClient(broker.bootstrap) as client, WireClient(broker.bootstrap) as producer:
        _open_transaction(client, topic)
        leader = client.leader(topic, 0)
        # A read_committed long poll at the LSO: appends behind the open transaction give it
        # nothing to read, so it runs to max_wait_ms and returns empty.
        cid = leader.send_request(API_FETCH, 4, fetch_body(topic, 0, 2, isolation_level=1, max_wait_ms=1500))
        started = time.monotonic()
        _wait_parked(broker, topic)
        assert producer.produce(topic, 0, record_batch([(None, b"e")])).error_code == 0
        frame = leader.recv_frame()
        assert int.from_bytes(frame[:4], "big") == cid
        assert time.monotonic() - started >= 1.2
        waited = parse_fetch(Reader(frame, 4), topic, 0)
        assert (waited.error_code, waited.records, waited.last_stable_offset) == (0, b"", 2)
        # read_uncommitted at the same offset has data at once.
        assert client.fetch(topic, 0, 2, isolation_level=0, max_wait_ms=1500).batches()[0][0] == 2


def test_lso_survives_restart_and_librdkafka_read_committed_stops_there(broker_factory, topic):
    b = broker_factory()
    create_topic(b.bootstrap, topic)
    with WireClient(b.bootstrap) as client:
        _open_transaction(client, topic)
    b.kill9()
    b.start()
    with WireClient(b.bootstrap) as client:
        after = client.fetch(topic, 0, 0, isolation_level=1)
        assert (after.high_watermark, after.last_stable_offset) == (6, 2)
        assert after.batches() == [(0, 1, 0)]
    got = confluent_consume(b.bootstrap, topic, 0, 0, count=6, timeout=4.0, **{"isolation.level": "read_committed"})
    assert [r.value for r in got] == [b"a", b"b"]
    got = confluent_consume(b.bootstrap, topic, 0, 0, count=6, timeout=10.0,
                            **{"isolation.level": "read_uncommitted"})
    assert [r.value for r in got] == [b"a", b"b", b"t1", b"t2", b"c", b"d"]



def test_read_committed_long_poll_woken_by_stable_append(broker_factory, topic):
    broker = broker_factory(log_level="DEBUG")
    create_topic(broker.bootstrap, topic)
    with WireClient(broker.bootstrap) as client, WireClient(broker.bootstrap) as producer:
        assert producer.produce(topic, 0, record_batch([(None, b"a")])).error_code == 0
        leader = client.leader(topic, 0)
        # No transaction is open, so an append moves the LSO with the high watermark and must
        # wake a read_committed long poll at once (through PartitionLog.on_stable_advance).
        cid = leader.send_request(API_FETCH, 4, fetch_body(topic, 0, 1, isolation_level=1, max_wait_ms=8000))
        started = time.monotonic()
        _wait_parked(broker, topic)
        assert producer.produce(topic, 0, record_batch([(None, b"b")])).error_code == 0
        frame = leader.recv_frame()
        assert int.from_bytes(frame[:4], "big") == cid
        assert time.monotonic() - started < 6.0
        woken = parse_fetch(Reader(frame, 4), topic, 0)
        assert woken.batches() == [(1, 1, 0)] and woken.last_stable_offset == 2


def test_unknown_isolation_level_is_invalid_request(broker, topic):
    create_topic(broker.bootstrap, topic)
    with WireClient(broker.bootstrap) as client:
        assert client.fetch(topic, 0, 0, isolation_level=2).error_code == INVALID_REQUEST
        assert client.list_offset(topic, 0, -1, isolation_level=5) == (INVALID_REQUEST, -1)
        assert client.fetch(topic, 0, 0, isolation_level=1).error_code == 0  # the connection stays usable
