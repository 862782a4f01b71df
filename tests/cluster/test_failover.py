"""Failover: kill -9 of the leader's host during an acks=all, min.insync.replicas=2,
replication.factor=3 stream from an idempotent confluent-kafka or kafka-python producer.  A new leader comes
from the ISR within seconds; every acknowledged record is read back afterwards, in order, none
twice.  The soak variant kills the leader again and again, restarting each killed host."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster.conftest import SESSION_TIMEOUT_MS, Cluster
from tests.helpers import confluent_produce, confluent_read_to_end, make_records, read_batches, segment_files

ELECTION_DEADLINE_S = SESSION_TIMEOUT_MS / 1000 + 12  # session expiry + election, on a busy machine
PARKED_FETCH_WAIT_MS = 100  # replica.fetch.wait.max.ms of the divergence and pause tests
PAUSE_SESSION_TIMEOUT_MS = 6000  # the pause test's followers stop for a moment: well inside it
TAIL = 30  # acks=1 records only the paused leader gets


class _Stream:
    """An idempotent acks=all producer (confluent-kafka or kafka-python) writing "v-<i>" in order
    from a thread; keeps the acknowledged (offset, i) and any delivery error."""

    def __init__(self, bootstrap: str, topic: str, total: int, client: str = "confluent",
                 conf: dict[str, str] | None = None) -> None:
        self.topic, self.total = topic, total
        self.conf = conf or {}  # confluent-kafka's security settings on a secured cluster
        self.acked: list[tuple[int, int]] = []  # (offset, i)
        self.errors: list[Any] = []
        run = self._run_confluent if client == "confluent" else self._run_kafka_python
        self._thread = threading.Thread(target=run, args=(bootstrap,), daemon=True)
        self._thread.start()

    def _ack(self, offset: int, value: bytes) -> None:
        self.acked.append((offset, int(value.split(b"-")[1])))

    def _run_confluent(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "message.timeout.ms": 90000, "retry.backoff.ms": 100, **self.conf})

        def report(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(err)
            else:
                self._ack(msg.offset(), msg.value())

        for i in range(self.total):
            producer.produce(self.topic, f"v-{i}".encode(), partition=0, on_delivery=report)
            producer.poll(0)
            if i % 20 == 19:
                time.sleep(0.01)  # a steady stream across the failover, not one burst before it
        producer.flush(120)

    def _run_kafka_python(self, bootstrap: str) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                 retries=1000, retry_backoff_ms=100, delivery_timeout_ms=90000,
                                 request_timeout_ms=10000)
        for i in range(self.total):
            value = f"v-{i}".encode()
            future = producer.send(self.topic, value, partition=0)
            future.add_callback(lambda md, v=value: self._ack(md.offset, v))
            future.add_errback(self.errors.append)
            if i % 20 == 19:
                time.sleep(0.01)
        producer.flush(120)
        producer.close(10)

    def join(self) -> None:
        self._thread.join(150)
        assert not self._thread.is_alive(), "the producer did not finish"


def _kill_leader(cluster: Cluster, topic: str) -> float:
    """kill -9 of the host leading partition 0; returns the seconds until another node leads."""
    old = cluster.partition(topic).leader
    cluster.host_of(old).kill9()
    killed = time.monotonic()
    new = cluster.wait_for("a new leader", lambda: (p := cluster.partition(topic)).leader not in (old, -1)
                           and p.leader // 100 != old // 100 and p.leader, ELECTION_DEADLINE_S)
    elapsed = time.monotonic() - killed
    print(f"leader {old} killed; node {new} leads after {elapsed:.2f}s")
    return elapsed


def _check_history(cluster: Cluster, topic: str, stream: _Stream) -> None:
    assert not stream.errors, f"{len(stream.errors)} deliveries failed, first {stream.errors[0]}"
    assert len(stream.acked) == stream.total
    host = next(h for h in cluster.hosts if h.running)
    read = confluent_read_to_end(host.bootstrap, topic, timeout=60, **cluster.client)
    values = [int(r.value.split(b"-")[1]) for r in read]
    assert len(values) == len(set(values)), "a value was written twice"
    assert values == sorted(values), "values out of order"
    missing = {i for _, i in stream.acked} - set(values)
    assert not missing, f"{len(missing)} acknowledged values lost, e.g. {sorted(missing)[:5]}"
    offsets = {i: o for o, i in stream.acked}
    assert all(read[k].offset == offsets[v] for k, v in enumerate(values)), "a value moved from its acknowledged offset"


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_kill9_of_the_leader_loses_no_acknowledged_write(cluster_factory: Callable[..., Cluster], topic: str,
                                                         client: str) -> None:
    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=2)
    stream = _Stream(cluster.bootstrap, topic, total=3000, client=client)
    cluster.wait_for("a third of the stream acknowledged", lambda: len(stream.acked) >= 1000, 60)
    assert _kill_leader(cluster, topic) < ELECTION_DEADLINE_S
    stream.join()
    _check_history(cluster, topic, stream)


@pytest.mark.soak
def test_repeated_leader_kills_lose_no_acknowledged_write(cluster_factory: Callable[..., Cluster], topic: str) -> None:
    cluster = cluster_factory(hosts=3)
    cluster.create_topic(topic, min_insync_replicas=2)
    stream = _Stream(cluster.bootstrap, topic, total=20000)
    elections = []
    for round_ in range(4):
        cluster.wait_for(f"round {round_}: records acknowledged",
                         lambda r=round_: len(stream.acked) >= 3000 * (r + 1), 120)
        elections.append(_kill_leader(cluster, topic))
        for host in cluster.hosts:
            if not host.running:
                host.start()
        cluster.wait_for("the restarted host back in the ISR", lambda: len(cluster.partition(topic).isrs) == 3, 90)
    stream.join()
    _check_history(cluster, topic, stream)
    print(f"elections: {', '.join(f'{e:.2f}s' for e in elections)}")


def _replica_log(cluster: Cluster, node: int, topic: str, partition: int = 0) -> tuple[int, bytes]:
    """A replica's log end offset and its batches' bytes, read from its segment files (a paused
    host cannot answer; a batch still being written is left out)."""
    directory = cluster.host_of(node).log_dir / f"shard-{node % 100 - 1}" / f"{topic}-{partition}"
    end, content = 0, bytearray()
    for path in segment_files(directory):
        data = path.read_bytes()
        for batch in read_batches(path):
            end = batch.base_offset + batch.last_offset_delta + 1
            content += data[batch.position:batch.position + 12 + batch.length]
    return end, bytes(content)


def test_a_leader_paused_past_its_session_is_fenced_truncated_and_rejoins_as_follower(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """SIGSTOP of the leader's host past its session under the acks=all stream.  Its followers are
    paused for a moment first, and acks=1 records written to it meanwhile, so it holds a tail
    they never fetched: the new leader, elected from them, lacks it.  Fenced, the old leader
    rejoins as a follower, truncates that tail (KIP-101/279) and then holds the new leader's
    log, byte for byte; no record the stream had acknowledged is lost."""
    cluster = cluster_factory(hosts=3, zookeeper_session_timeout_ms=PAUSE_SESSION_TIMEOUT_MS,
                              replica_fetch_wait_max_ms=PARKED_FETCH_WAIT_MS)
    cluster.create_topic(topic, min_insync_replicas=2)
    stream = _Stream(cluster.bootstrap, topic, total=3000)
    cluster.wait_for("a third of the stream acknowledged", lambda: len(stream.acked) >= 1000, 60)
    part = cluster.partition(topic)
    old = part.leader
    paused = cluster.host_of(old)
    pids = paused.pids()
    followers = [pid for r in part.replicas if r != old for pid in cluster.host_of(r).pids()]
    for pid in followers:
        os.kill(pid, signal.SIGSTOP)
    try:
        # As in the divergence test: fetches parked at the leader are answered (into the paused
        # followers' sockets, read after SIGCONT) before the tail is written.
        time.sleep(PARKED_FETCH_WAIT_MS / 1000 * 5)
        confluent_produce(paused.bootstrap, topic, make_records(TAIL, prefix="tail"), acks=1)
        tail_end = _replica_log(cluster, old, topic)[0]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
    finally:
        for pid in followers:
            os.kill(pid, signal.SIGCONT)
    try:
        new = cluster.wait_for("a new leader while the old one is paused",
                               lambda: (p := cluster.partition(topic)).leader not in (old, -1) and p.leader,
                               PAUSE_SESSION_TIMEOUT_MS / 1000 + 12)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    # Its session expired: it lost its leadership, registers again, truncates and follows.
    cluster.wait_for("the old leader back in the ISR as a follower",
                     lambda: (p := cluster.partition(topic)).leader == new and old in p.isrs, 60)
    stream.join()
    _check_history(cluster, topic, stream)
    assert not [r for r in confluent_read_to_end(cluster.bootstrap, topic) if r.value.startswith(b"tail")]
    cluster.wait_for("the old leader's log equal to the new leader's", lambda: (
        (ours := _replica_log(cluster, old, topic)) == _replica_log(cluster, new, topic) and ours[0] > 0), 30)
    log = paused.log_text()
    assert "ZooKeeper session lost" in log
    # The truncation drops the acks=1 tail, and whatever the stream's requests queued at the paused
    # host appended after SIGCONT, before it learnt that it had lost its leadership.
    truncations = [tuple(map(int, m)) for m in re.findall(rf"{topic}-0: truncating from (\d+) to (\d+)", log)]
    assert truncations and truncations[0][0] >= tail_end and truncations[0][1] <= tail_end - TAIL, \
        f"tail end {tail_end}, truncations {truncations}"


def test_unclean_leader_election_lets_an_out_of_sync_replica_lead(cluster_factory: Callable[..., Cluster],
                                                                  topic: str) -> None:
    cluster = cluster_factory(hosts=2)
    cluster.create_topic(topic, replication_factor=2, unclean_leader_election_enable="true")
    part = cluster.partition(topic)
    follower = next(r for r in part.replicas if r != part.leader)
    assert cluster.host_of(follower).stop() == 0  # out of the ISR: only the leader is in sync
    cluster.wait_for("the follower out of the ISR", lambda: cluster.partition(topic).isrs == [part.leader])
    cluster.host_of(part.leader).kill9()
    cluster.host_of(follower).start()
    # Clean election is impossible (the ISR's only member is dead); unclean election lets the
    # restarted, out-of-sync replica lead, and the controller says records may be lost.
    cluster.wait_for("the out-of-sync replica leading", lambda: cluster.partition(topic).leader == follower,
                     ELECTION_DEADLINE_S + 30)
    assert any("unclean leader election" in h.log_text() for h in cluster.hosts)


def test_a_diverged_old_leader_truncates_to_the_new_leaders_log(cluster_factory: Callable[..., Cluster],
                                                                 topic: str) -> None:
    """KIP-101/279: records only the old leader had (acks=1, its followers paused) are dropped
    from its log when it comes back as a follower of the leader elected meanwhile."""
    cluster = cluster_factory(hosts=3, zookeeper_session_timeout_ms=8000,
                              replica_fetch_wait_max_ms=PARKED_FETCH_WAIT_MS)
    cluster.create_topic(topic)
    part = cluster.partition(topic)
    old = cluster.host_of(part.leader)
    confluent_produce(old.bootstrap, topic, make_records(20, prefix="both"), acks="all")
    followers = [cluster.host_of(r) for r in part.replicas if r != part.leader]
    paused = [pid for host in followers for pid in host.pids()]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        # A follower's fetch parked at the leader when it stopped would be answered with the
        # "lost" records into its socket, read after SIGCONT (replicated after all, as in
        # Kafka): let the leader answer the parked fetches empty first.
        time.sleep(PARKED_FETCH_WAIT_MS / 1000 * 10)
        confluent_produce(old.bootstrap, topic, make_records(30, prefix="lost"), acks=1)
        old.kill9()
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    cluster.wait_for("a new leader", lambda: cluster.partition(topic).leader not in (part.leader, -1), 40)
    confluent_produce(cluster.bootstrap, topic, make_records(40, prefix="new"), acks="all")
    old.start()
    cluster.wait_for("the old leader back in the ISR", lambda: part.leader in cluster.partition(topic).isrs, 60)
    assert "truncating from 50 to 20" in old.log_text()
    values = [r.value.split(b"-")[0] for r in confluent_read_to_end(cluster.bootstrap, topic)]
    assert values == [b"both"] * 20 + [b"new"] * 40
