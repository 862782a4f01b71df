"""A history checker in the style of Jepsen: producers write unique values with acks=all while a
nemesis injects faults, then the checker reads every partition back and compares it with what
was acknowledged.

Each producer (an idempotent confluent-kafka producer on its own thread) writes "<producer>-<seq>"
round-robin over the partitions and records every acknowledgement (partition, offset, value).  The
nemesis injects one fault at a time on a random host: kill -9 then restart, SIGSTOP past the
ZooKeeper session then SIGCONT, or (hosts in network namespaces) a partition isolating the host,
then heals it; between faults it lets the cluster recover.  The checker wants every acknowledged
value exactly once, in the partition and at the offset it was acknowledged at, and each
producer's values in a partition in the order it wrote them; unacknowledged values that made it
are indeterminate (allowed)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.conftest import Cluster
from tests.cluster.netns import Network
from tests.helpers import confluent_read_to_end

PAUSE_S = (4.0, 6.0)  # past the tests' 3 s ZooKeeper session
CUT_S = (4.0, 8.0)
DOWN_S = (0.5, 3.0)


@dataclass
class Ack:
    partition: int
    offset: int
    value: str


class Producers:
    """`count` producer threads writing until `stop()`; `acks` and `errors` as they come."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, count: int = 3) -> None:
        self.topic, self.partitions = topic, partitions
        self.acks: list[Ack] = []
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(bootstrap, k), daemon=True) for k in range(count)]
        for t in self._threads:
            t.start()

    def _run(self, bootstrap: str, k: int) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "message.timeout.ms": 60000, "retry.backoff.ms": 100})

        def report(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors[err.name()] += 1
            else:
                self.acks.append(Ack(msg.partition(), msg.offset(), msg.value().decode()))

        seq = 0
        while not self._stop.is_set():
            try:
                producer.produce(self.topic, f"p{k}-{seq}".encode(), partition=seq % self.partitions,
                                 on_delivery=report)
            except BufferError:  # the queue is full while a leader is missing: wait for deliveries
                producer.poll(0.5)
                continue
            self.sent += 1
            seq += 1
            producer.poll(0)
            if seq % 10 == 0:
                time.sleep(0.02)  # ~1.5 k values/s over all producers: a bounded load on a shared machine
        remaining = producer.flush(120)
        if remaining:
            self.errors["still pending after flush"] += remaining

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(150)
        assert not any(t.is_alive() for t in self._threads), "a producer did not finish"


class Nemesis:
    """Injects one fault at a time for `duration` seconds; `faults` lists what it did."""

    def __init__(self, cluster: Cluster, network: Network | None, topic: str, duration: float,
                 seed: int | None = None) -> None:
        self.cluster, self.network, self.topic = cluster, network, topic
        self.duration = duration
        self.random = random.Random(seed)
        self.faults: list[str] = []
        self.kinds = ["kill", "pause"] + (["partition"] if network is not None else [])

    def run(self) -> None:
        deadline = time.monotonic() + self.duration
        while time.monotonic() < deadline:
            time.sleep(self.random.uniform(1.0, 3.0))
            index = self.random.randrange(len(self.cluster.hosts))
            kind = self.random.choice(self.kinds)
            getattr(self, f"_{kind}")(index)
            self.faults.append(f"{kind} host {index}")
            self.recover()

    def _kill(self, index: int) -> None:
        host = self.cluster.hosts[index]
        host.kill9()
        time.sleep(self.random.uniform(*DOWN_S))
        host.start()

    def _pause(self, index: int) -> None:
        pids = self.cluster.hosts[index].pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(self.random.uniform(*PAUSE_S))
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    def _partition(self, index: int) -> None:
        assert self.network is not None
        self.network.partition([index])
        try:
            time.sleep(self.random.uniform(*CUT_S))
        finally:
            self.network.heal()

    def recover(self, timeout: float = 60.0) -> None:
        """Heals everything, restarts any dead host, and waits for every partition's full ISR."""
        if self.network is not None:
            self.network.heal()
        for host in self.cluster.hosts:
            if not host.running:
                host.start()
        hosts = len(self.cluster.hosts)
        self.cluster.wait_for("every replica in sync", lambda: all(
            len(p.isrs) == hosts and p.leader >= 0
            for p in self.cluster.admin().list_topics(self.topic, timeout=10).topics[self.topic].partitions.values()),
            timeout)


@dataclass
class Report:
    faults: list[str]
    sent: int
    acked: int
    errors: dict[str, int]
    read: int
    lost: list[str] = field(default_factory=list)  # acknowledged, not read back
    duplicated: list[str] = field(default_factory=list)  # acknowledged, read more than once
    moved: list[str] = field(default_factory=list)  # read at another partition or offset than acknowledged
    reordered: list[str] = field(default_factory=list)  # a producer's values out of its order in a partition
    indeterminate: int = 0  # not acknowledged, read back once (allowed)

    @property
    def valid(self) -> bool:
        return not (self.lost or self.duplicated or self.moved or self.reordered)

    def __str__(self) -> str:
        kinds = Counter(f.split()[0] for f in self.faults)
        return (f"faults injected: {len(self.faults)} ({dict(kinds)}); values sent {self.sent}, acknowledged "
                f"{self.acked}, read {self.read}, delivery errors {self.errors}; lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)}, moved {len(self.moved)}, reordered {len(self.reordered)}, "
                f"indeterminate {self.indeterminate}")


def check(cluster: Cluster, topic: str, partitions: int, producers: Producers, faults: list[str]) -> Report:
    """Reads every partition to its end and checks the history against the acknowledgements."""
    read: dict[int, list[tuple[int, str]]] = {
        p: [(r.offset, (r.value or b"").decode()) for r in confluent_read_to_end(cluster.bootstrap, topic, p, 120)]
        for p in range(partitions)}
    report = Report(faults, producers.sent, len(producers.acks), dict(producers.errors),
                    sum(len(v) for v in read.values()))
    where = {value: (p, offset) for p, records in read.items() for offset, value in records}
    counts = Counter(value for records in read.values() for _, value in records)
    acked = {a.value: a for a in producers.acks}
    report.duplicated = sorted(v for v, n in counts.items() if n > 1 and v in acked)
    for value, ack in acked.items():
        if value not in where:
            report.lost.append(value)
        elif where[value] != (ack.partition, ack.offset):
            report.moved.append(value)
    report.indeterminate = len(set(counts) - set(acked))
    for p, records in read.items():
        last: dict[str, int] = {}
        for _, value in records:
            writer, seq = value.split("-")
            if int(seq) <= last.get(writer, -1):
                report.reordered.append(f"{value} in partition {p}")
            last[writer] = int(seq)
    return report
