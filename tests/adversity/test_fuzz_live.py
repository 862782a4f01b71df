"""Live-socket fuzzer: mutated frames of every API against a real `pyk serve`, beside real clients.

Fuzzing threads open connection after connection and send generated requests of every implemented
(api, version), three quarters of them mutated (tests/adversity/fuzz.py), some with lying size
prefixes, and well-formed Produce
requests whose record batches are mutated (bad CRCs, lengths, codecs, record framing) into a sink
topic.  Meanwhile a confluent-kafka producer (idempotent, acks=all) and a consumer keep working
on a topic of their own.  Afterwards: the broker answers, its RSS stayed under a generous bound,
no traceback was logged (tests/conftest.py fails the test on one: that is a bug found), every
acknowledged record was consumed, whatever the sink accepted is readable by a real consumer, and
after kill -9 the log recovers and still holds every acknowledged record.

Budget: PYK_FUZZ_SECONDS of fuzzing per engine (default 20 in the default suite); the `soak`
variant runs PYK_FUZZ_SOAK_SECONDS (default 600) on the default engine.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError as ClientError
from confluent_kafka import Producer, TopicPartition

from tests.adversity.fuzz import CASES, apply, random_mutations, seed_batch, seed_frame
from tests.adversity.test_limits import ENGINES, MIB, rss
from tests.adversity.wire import WireClient, request_header, string
from tests.helpers import BrokerProcess, confluent_consumer, create_topic, unique_topic, wait_for

SECONDS = float(os.environ.get("PYK_FUZZ_SECONDS", "20"))
SOAK_SECONDS = float(os.environ.get("PYK_FUZZ_SOAK_SECONDS", "600"))
FUZZ_THREADS = 3
GENERATED_SEEDS = 64
RSS_BOUND = 600 * MIB  # growth over the run; the broker idles at about 100 MiB per process


@dataclass
class Counts:
    connections: int = 0
    frames: int = 0
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, connections: int, frames: int, batches: int) -> None:
        with self.lock:
            self.connections += connections
            self.frames += frames
            self.batches += batches


def _produce_with_batch(topic: str, batch: bytes, version: int, cid: int) -> bytes:
    """A well-formed Produce (v3 or v7; classic encoding) of one batch to partition 0 of `topic`."""
    body = (string(None) + struct.pack(">hi", -1, 5000) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch)
    return request_header(0, version, cid) + body


class Seeds:
    """Valid requests of every (api, version), from GENERATED_SEEDS generator seeds each, encoded
    on first use (shared by the fuzzing threads; a lost race encodes one twice)."""

    def __init__(self) -> None:
        self.frames: dict[tuple[int, int, int], bytes] = {}

    def pick(self, rng: random.Random) -> bytes:
        key, version = rng.choice(CASES)
        seed = rng.randrange(GENERATED_SEEDS)
        frame = self.frames.get((key, version, seed))
        if frame is None:
            frame = self.frames[(key, version, seed)] = seed_frame(key, version, seed)
        return frame


def _fuzz_connection(host: str, port: int, rng: random.Random, sink: str, seeds: Seeds, counts: Counts) -> None:
    frames = batches = 0
    with socket.create_connection((host, port), timeout=5.0) as s:
        s.settimeout(0.2)
        for i in range(rng.randint(1, 8)):
            if rng.random() < 0.3:
                batch = apply(seed_batch(rng), random_mutations(rng, rng.randint(1, 3)))
                payload = _produce_with_batch(sink, bytes(batch), rng.choice((3, 7)), i)
                batches += 1
            else:
                # A quarter go unmutated: valid requests with odd values reach the handlers.
                edits = 0 if rng.random() < 0.25 else rng.randint(1, 4)
                payload = bytes(apply(seeds.pick(rng), random_mutations(rng, edits)))
                frames += 1
            prefix = struct.pack(">i", len(payload))
            if rng.random() < 0.05:  # a lying size prefix: the rest of the stream is out of step
                prefix = bytes(apply(prefix, random_mutations(rng, 1)))[:4].ljust(4, b"\x00")
            try:
                s.sendall(prefix + payload)
                s.recv(65536)  # an answer, or the close, or nothing yet
            except TimeoutError:
                pass
            except OSError:  # closed by the broker: a protocol violation
                break
    counts.add(1, frames, batches)


def _fuzz(b: BrokerProcess, seconds: float, sink: str, seed: int) -> Counts:
    host, port = b.bootstrap.rsplit(":", 1)
    seeds = Seeds()
    counts = Counts()
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < deadline:
            _fuzz_connection(host, int(port), rng, sink, seeds, counts)

    in_threads(run)
    return counts


def in_threads(work: Callable[[int], None]) -> None:
    """work(0..FUZZ_THREADS-1) in threads, waited for; fails on the first exception one raised (a
    refused connect would mean the listener died)."""
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(FUZZ_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"fuzzing thread failed: {errors[0]!r}"


class Traffic:
    """A confluent-kafka producer (idempotent, acks=all) and consumer on one topic, in threads;
    `acked` holds every value the broker acknowledged, `consumed` every value read."""

    def __init__(self, bootstrap: str, topic: str, conf: dict[str, str] | None = None) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.conf = conf or {}  # librdkafka's security settings on a secured listener
        self.acked: set[bytes] = set()
        self.consumed: set[bytes] = set()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]
        self.produced = threading.Event()  # the producer flushed: `acked` is final

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _produce(self) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 5,
                      "message.timeout.ms": 60000, **self.conf})

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self.acked.add(msg.value())
            else:
                self.errors.append(f"delivery: {err}")

        i = 0
        while not self.stop.is_set():
            p.produce(self.topic, value=b"traffic-%d" % i, partition=i % 2, on_delivery=on_delivery)
            i += 1
            p.poll(0.01)
        if p.flush(60):
            self.errors.append("producer could not flush")
        self.produced.set()

    def _consume(self) -> None:
        """Reads until stopped and caught up with the acknowledged records (or 60 s after the stop)."""
        c = confluent_consumer(self.bootstrap, **self.conf)
        c.assign([TopicPartition(self.topic, p, 0) for p in range(2)])
        give_up: float | None = None
        try:
            while give_up is None or (not self.acked <= self.consumed and time.monotonic() < give_up):
                if give_up is None and self.produced.is_set():
                    give_up = time.monotonic() + 60
                for msg in c.consume(num_messages=500, timeout=0.2):
                    if msg.error() is None:
                        self.consumed.add(msg.value())
                    elif msg.error().code() != ClientError._PARTITION_EOF:
                        self.errors.append(f"consume: {msg.error()}")
        finally:
            c.close()


def read_all(bootstrap: str, topic: str, partitions: int) -> tuple[set[bytes], list[str]]:
    """Every value of the topic from offset 0 to the end, read by confluent-kafka, and its errors."""
    c = confluent_consumer(bootstrap, **{"enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: set[bytes] = set()
    errors: list[str] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for msg in c.consume(num_messages=1000, timeout=0.5):
                if msg.error() is None:
                    values.add(msg.value() or b"")
                elif msg.error().code() == ClientError._PARTITION_EOF:
                    at_end.add(msg.partition())
                else:
                    errors.append(str(msg.error()))
    finally:
        c.close()
    assert len(at_end) == partitions, f"reached the end of {sorted(at_end)} of {partitions} partitions"
    return values, errors


def check_served(b: BrokerProcess, traffic: Traffic, growth: int, bound: int) -> None:
    """After fuzzing: the clients beside it had no error and read every acknowledged record, the
    broker's RSS grew less than `bound`, and it still answers."""
    assert not traffic.errors, traffic.errors[:5]
    missing = traffic.acked - traffic.consumed
    assert not missing, f"{len(missing)} acknowledged records were not consumed"
    assert growth < bound, f"RSS grew by {growth / MIB:.0f} MiB"
    with WireClient(b.bootstrap) as w:
        assert w.api_versions()


def live_fuzz(broker_factory: Any, engine: str | None, seconds: float, seed: int) -> Counts:
    overrides = {"connections.max.idle.ms": 5000, "num.shards": 1}
    if engine is not None:
        overrides["io.engine"] = engine
    b = broker_factory(overrides=overrides)
    topic, sink = unique_topic("traffic"), unique_topic("sink")
    create_topic(b.bootstrap, topic, partitions=2)
    create_topic(b.bootstrap, sink)
    before = rss(b)
    peak = before
    started = time.monotonic()
    with Traffic(b.bootstrap, topic) as traffic:
        wait_for(lambda: traffic.acked, timeout=30, what="the first acknowledged record")
        counts = _fuzz(b, seconds, sink, seed)
        peak = max(peak, rss(b))
    elapsed = time.monotonic() - started
    check_served(b, traffic, peak - before, RSS_BOUND)
    accepted, sink_errors = read_all(b.bootstrap, sink, 1)
    assert not sink_errors, f"what the broker accepted into the sink is not readable: {sink_errors[:5]}"
    b.kill9()
    b.start()
    after, errors = read_all(b.bootstrap, topic, 2)
    assert not errors and traffic.acked <= after, "acknowledged records lost in recovery"
    print(f"live fuzz ({engine or 'default'} engine, seed {seed}): {counts.connections} connections, "
          f"{counts.frames} requests (3/4 mutated), {counts.batches} mutated batches in {seconds:.0f} s of fuzzing "
          f"({elapsed:.0f} s with set-up); {len(traffic.acked)} records acknowledged and read back; "
          f"{len(accepted)} sink records accepted; RSS +{(peak - before) / MIB:.0f} MiB")
    return counts


@pytest.mark.parametrize("engine", ENGINES)
def test_live_fuzz(broker_factory, engine):
    live_fuzz(broker_factory, engine, SECONDS, int(os.environ.get("PYK_FUZZ_SEED", "0")) or random.getrandbits(16))


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 600)
def test_live_fuzz_soak(broker_factory):
    live_fuzz(broker_factory, None, SOAK_SECONDS, int(os.environ.get("PYK_FUZZ_SEED", "0")) or random.getrandbits(16))
