"""Shard balancing: partitions move between shards while real clients produce and consume; no
acknowledged record is lost, and a moved partition keeps its open transaction and its
idempotent producers' sequence numbers (docs/shards.md, "Balancing")."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from tests.durability.test_shards import _leader_epochs, _leaders
from tests.helpers import REPO, confluent_admin, unique_topic, wait_for
from tests.transactions.helpers import read_all, txn_producer

PARTITIONS = 8
TIMEOUT = 30


def _pyk_shards(b: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`pyk shards ...` against the broker's admin socket; fails the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-m", "pyk", "shards", *args, "--log-dir", str(b.log_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"pyk shards {args}: {proc.stdout}{proc.stderr}"
    return proc


def _plan(b: Any, *args: str, window_ms: int = 1500) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(_pyk_shards(b, "balance", "--json", "--window-ms", str(window_ms), *args).stdout)
    return plan


def _on_one_shard(b: Any, topic: str, partitions: int) -> None:
    """Creates the topic with every partition on shard 0 (a manual replica assignment)."""
    admin = confluent_admin(b.bootstrap)
    first = min(admin.list_topics(timeout=TIMEOUT).brokers)
    new = NewTopic(topic, num_partitions=partitions, replication_factor=-1, replica_assignment=[[first]] * partitions)
    admin.create_topics([new])[topic].result(timeout=TIMEOUT)


class _Load:
    """An idempotent acks=all producer writing to every partition in turn (about 1 MB/s) and a
    consumer group reading everything, each on its own thread, recording what was acknowledged,
    what was consumed and every error a client reported."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.acked: set[bytes] = set()
        self.consumed: list[bytes] = []
        self.errors: list[str] = []
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        common = {"bootstrap.servers": bootstrap, "error_cb": self._on_error}
        self.producer = Producer({**common, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        self.consumer = Consumer({**common, "group.id": unique_topic("balance-group"), "auto.offset.reset": "earliest"})
        self.consumer.subscribe([topic])
        self._producing = threading.Thread(target=self._produce)
        self._consuming = threading.Thread(target=self._consume)
        self._producing.start()
        self._consuming.start()

    def _on_error(self, err: Any) -> None:
        # Connection-level reports (a broker refusing a request while a partition moves) are
        # retried by librdkafka; only a fatal error or a failed delivery loses anything.
        if err.fatal():
            self.errors.append(f"fatal: {err}")

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"delivery: {err}")
        else:
            self.acked.add(msg.value())

    def _produce(self) -> None:
        i = 0
        while not self._stop_producing.wait(0.1):
            for _ in range(100):
                self.producer.produce(self.topic, b"%08d" % i + b"." * 992, partition=i % PARTITIONS,
                                      on_delivery=self._delivered)
                i += 1
            self.producer.poll(0)
        self.producer.flush(TIMEOUT)

    def _consume(self) -> None:
        while not self._stop_consuming.is_set():
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                if not msg.error().retriable():
                    self.errors.append(f"consume: {msg.error()}")
                continue
            self.consumed.append(msg.value())

    def stop(self) -> set[bytes]:
        """Stops producing, lets the consumer catch up; the acknowledged values never consumed."""
        self._stop_producing.set()
        self._producing.join(TIMEOUT + 10)
        deadline = time.monotonic() + TIMEOUT
        while not self.acked <= set(self.consumed) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._stop_consuming.set()
        self._consuming.join(TIMEOUT)
        self.consumer.close()
        return self.acked - set(self.consumed)


def test_balancing_spreads_hot_partitions_under_load_without_losing_records(broker_factory):
    b = broker_factory(num_shards=2)
    topic = unique_topic("hot")
    _on_one_shard(b, topic, PARTITIONS)
    load = _Load(b.bootstrap, topic)
    try:
        wait_for(lambda: len(load.consumed) > 2000, TIMEOUT, what="the consumer group reading")
        planned = _plan(b, "--dry-run")
        assert planned["skew_before"] > 90 and not planned["executed"], planned
        assert len(planned["moves"]) == PARTITIONS // 2, planned
        assert set(_leaders(b.bootstrap, topic).values()) == {1}, "a dry run moved something"

        done = _plan(b)
        assert done["executed"] and all(m["done"] for m in done["moves"]), done
        moved = {m["partition"] for m in done["moves"]}
        leaders = _leaders(b.bootstrap, topic)
        assert sorted(leaders.values()) == [1] * 4 + [2] * 4, leaders
        epochs = _leader_epochs(b.bootstrap, topic)
        assert {p for p, e in epochs.items() if e == 1} == moved and set(epochs.values()) == {0, 1}, epochs

        def balanced() -> dict[str, Any] | None:
            plan = _plan(b, "--dry-run")
            return plan if min(plan["before"]) >= 0.75 * max(plan["before"]) and not plan["moves"] else None

        after = wait_for(balanced, TIMEOUT, interval=0, what="the shards' byte rates within 25 % of each other")
        assert min(after["before"]) > 0, after
    finally:
        missing = load.stop()
    assert load.errors == [], load.errors[:10]
    assert len(load.acked) > 4000
    assert not missing, f"{len(missing)} acknowledged records never consumed, e.g. {sorted(missing)[:3]}"


def test_a_moved_partition_keeps_its_open_transaction_and_idempotent_sequences(broker_factory):
    b = broker_factory(num_shards=2)
    topic = unique_topic("txn-move")
    _on_one_shard(b, topic, 2)
    txn = txn_producer(b.bootstrap, unique_topic("txn-id"))
    idem = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all"})
    txn.begin_transaction()
    for i in range(10):
        txn.produce(topic, b"txn-%d" % i, partition=0)
        idem.produce(topic, b"idem-%d" % i, partition=1)
    assert txn.flush(TIMEOUT) == 0 and idem.flush(TIMEOUT) == 0

    assert "moved" in _pyk_shards(b, "move", topic, "0", "1").stdout
    assert "moved" in _pyk_shards(b, "move", topic, "1", "1").stdout
    assert _leaders(b.bootstrap, topic) == {0: 2, 1: 2}
    assert _leader_epochs(b.bootstrap, topic) == {0: 1, 1: 1}
    # The transaction is still open on the new shard: read_committed sees nothing of it yet.
    assert read_all(b.bootstrap, topic, 2, "read_committed", expect=10)[0] == []

    for i in range(10, 20):
        txn.produce(topic, b"txn-%d" % i, partition=0)
        idem.produce(topic, b"idem-%d" % i, partition=1)
    assert idem.flush(TIMEOUT) == 0
    txn.commit_transaction(TIMEOUT)

    seen = read_all(b.bootstrap, topic, 2, "read_committed", expect=40)
    assert [v for _, v in seen[0]] == [b"txn-%d" % i for i in range(20)]
    # The idempotent producer's sequence went on where it was: one copy of each, in order.
    assert [v for _, v in seen[1]] == [b"idem-%d" % i for i in range(20)]

    # The new owner's checkpoints know the adopted logs: a crash now loses nothing either.
    b.kill9()
    b.start()
    assert _leaders(b.bootstrap, topic) == {0: 2, 1: 2}
    again = read_all(b.bootstrap, topic, 2, "read_committed", expect=40)
    assert again == seen


def test_automatic_balancing_moves_hot_partitions_by_itself(broker_factory):
    b = broker_factory(num_shards=2, shard_balancer_enable=True, shard_balancer_window_ms=1000,
                       shard_balancer_min_bytes_per_sec=0)
    topic = unique_topic("auto")
    _on_one_shard(b, topic, PARTITIONS)
    load = _Load(b.bootstrap, topic)
    try:
        wait_for(lambda: sorted(_leaders(b.bootstrap, topic).values()) == [1] * 4 + [2] * 4, TIMEOUT,
                 what="the balancer spreading the partitions over both shards")
    finally:
        missing = load.stop()
    assert load.errors == [], load.errors[:10]
    assert not missing, f"{len(missing)} acknowledged records never consumed"
    assert "balanced shards: load" in b.log_text()
