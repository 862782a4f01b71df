"""Client quotas (KIP-13/55/124/219/546) against real clients over TCP.

Rates: two confluent-kafka producers (or consumers) on one topic, one of them under a byte-rate
quota; the quota'd one's achieved rate over the run lands near its quota and librdkafka's
throttle callback reports the broker's throttle times, while the other goes on at a multiple of
it; the throttled producer loses nothing.  Quotas are set with Kafka's own ConfigCommand
(AlterClientQuotas over --bootstrap-server) and pyk's `pyk quotas`; DescribeClientQuotas
answers both; quotas survive a restart.  The bands are generous: the machine these run on is
shared and busy (docs/security.md records measured numbers).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import BrokerProcess, confluent_watermarks, create_topic, free_port
from tests.kafka import run_java
from tests.metrics.test_endpoint import Endpoint

CONFIG_COMMAND = "kafka.admin.ConfigCommand"
QUOTA = 512 * 1024  # bytes per second
RUN_S = 15.0
SETTLE_S = 5.0  # rates are measured after this: the first window lets a burst through (Kafka's Rate)
# Three one-second samples: the first burst is up to two windows' worth (the default 11 would
# let 10 s of quota through at once, as it does in Kafka).
WINDOWS = {"quota.window.num": 3}
VALUE = b"v" * 1000
PERCENT = 10.0  # request_percentage of the request quota test


def kafka_configs(bootstrap: str, *args: str) -> str:
    return run_java(CONFIG_COMMAND, "--bootstrap-server", bootstrap, *args).stdout


@dataclass
class Load:
    """One client's progress: bytes delivered (or consumed), throttle events, errors."""

    client_id: str
    delivered: int = 0  # bytes between SETTLE_S and the end of the run
    records: int = 0
    errors: list[Any] = field(default_factory=list)
    throttles: list[float] = field(default_factory=list)  # seconds, as librdkafka's ThrottleEvent has them
    seconds: float = 0.0  # from SETTLE_S to the end
    total_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds

    def on_throttle(self, event: Any) -> None:
        if event.throttle_time > 0:
            self.throttles.append(event.throttle_time)


def produce_for(bootstrap: str, topic: str, load: Load, seconds: float, **conf: Any) -> None:
    """Produces VALUE records as fast as the client may for `seconds`; counts what was delivered
    within them, then flushes the rest (all of it must arrive: nothing is lost to throttling)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": load.client_id, "linger.ms": 5,
                         "queue.buffering.max.messages": 1000, "throttle_cb": load.on_throttle,
                         "message.timeout.ms": 120000, **conf})
    started = time.monotonic()
    settled, end = started + SETTLE_S, started + seconds

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            load.errors.append(err)
            return
        load.records += 1
        if settled <= time.monotonic() < end:
            load.delivered += len(msg.value())

    sent = 0
    while time.monotonic() < end:
        try:
            producer.produce(topic, VALUE, partition=0, on_delivery=delivered)
            sent += 1
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
    load.seconds = time.monotonic() - settled
    left = producer.flush(120)
    assert left == 0, f"{load.client_id}: {left} records undelivered"
    assert load.records == sent, f"{load.client_id}: {sent} sent, {load.records} delivered"


def consume_for(bootstrap: str, topic: str, load: Load, seconds: float, count: int, **conf: Any) -> None:
    """Consumes the partition from offset 0 for `seconds` or until `count` records were read."""
    from confluent_kafka import TopicPartition

    from tests.helpers import confluent_consumer

    consumer = confluent_consumer(bootstrap, **{"client.id": load.client_id, "throttle_cb": load.on_throttle, **conf})
    consumer.assign([TopicPartition(topic, 0, 0)])
    started = time.monotonic()
    settled, end = started + SETTLE_S, started + seconds
    try:
        while load.records < count and time.monotonic() < end:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                if msg.error():
                    load.errors.append(msg.error())
                    continue
                load.records += 1
                if time.monotonic() >= settled:
                    load.delivered += len(msg.value())
    finally:
        consumer.close()
    load.seconds = max(time.monotonic() - settled, 0.001)
    load.total_seconds = time.monotonic() - started


def run_together(*jobs: Any) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_S + 180)
    assert not any(t.is_alive() for t in threads)


def test_producer_byte_rate(broker_factory: Any, topic: str) -> None:
    broker = broker_factory(overrides=WINDOWS)
    create_topic(broker.bootstrap, topic)
    assert "Completed updating config for client slow" in kafka_configs(
        broker.bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "slow",
        "--add-config", f"producer_byte_rate={QUOTA}")
    slow, fast = Load("slow"), Load("fast")
    run_together(lambda: produce_for(broker.bootstrap, topic, slow, RUN_S, **{"enable.idempotence": True}),
                 lambda: produce_for(broker.bootstrap, topic, fast, RUN_S))
    print(f"producer_byte_rate {QUOTA}: slow {slow.rate:.0f} B/s ({len(slow.throttles)} throttles, "
          f"max {max(slow.throttles, default=0)} s), fast {fast.rate:.0f} B/s")
    assert not slow.errors and not fast.errors
    assert 0.5 * QUOTA <= slow.rate <= 1.5 * QUOTA
    assert slow.throttles, "librdkafka reported no throttle time"
    assert not fast.throttles
    assert fast.rate >= 3 * slow.rate
    assert confluent_watermarks(broker.bootstrap, topic)[1] == slow.records + fast.records


def test_consumer_byte_rate(broker_factory: Any, topic: str) -> None:
    broker = broker_factory(overrides=WINDOWS)
    create_topic(broker.bootstrap, topic)
    count = 12_000  # 12 MB: more than the quota'd consumer may read in the run
    from confluent_kafka import Producer

    # Small batches: a Fetch returns whole batches, so they bound how finely fetches are measured.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "batch.size": 16384})
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, VALUE, partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    kafka_configs(broker.bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "slow",
                  "--add-config", f"consumer_byte_rate={QUOTA}")
    slow, fast = Load("slow"), Load("fast")
    small = {"max.partition.fetch.bytes": 65536}  # fetches well below one window's worth of the quota
    run_together(lambda: consume_for(broker.bootstrap, topic, slow, RUN_S, count, **small),
                 lambda: consume_for(broker.bootstrap, topic, fast, RUN_S, count, **small))
    fast_rate = fast.records * len(VALUE) / fast.total_seconds
    print(f"consumer_byte_rate {QUOTA}: slow {slow.rate:.0f} B/s after {SETTLE_S:g} s, {slow.records} records in "
          f"{slow.total_seconds:.1f} s ({len(slow.throttles)} throttles); fast read all {count} in "
          f"{fast.total_seconds:.1f} s ({fast_rate:.0f} B/s)")
    assert not slow.errors and not fast.errors
    assert fast.records == count and not fast.throttles
    assert slow.records < count
    assert 0.5 * QUOTA <= slow.rate <= 1.5 * QUOTA
    assert slow.throttles, "librdkafka reported no throttle time"
    assert fast_rate >= 3 * slow.rate


PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')


def test_user_quotas_and_their_precedence(tmp_path: Any, topic: str) -> None:
    """users/alice is shared by alice's client ids; users/alice/clients/vip overrides it for that
    client id; bob has no quota.  Principals from SASL PLAIN."""
    port = free_port(2)
    broker = BrokerProcess(tmp_path, {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{port + 1}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN", "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        **WINDOWS}, port=port, shards=1)
    broker.start()
    try:
        create_topic(broker.bootstrap, topic)
        kafka_configs(broker.bootstrap, "--alter", "--entity-type", "users", "--entity-name", "alice",
                      "--add-config", f"producer_byte_rate={QUOTA}")
        kafka_configs(broker.bootstrap, "--alter", "--entity-type", "users", "--entity-name", "alice",
                      "--entity-type", "clients", "--entity-name", "vip", "--add-config", "producer_byte_rate=1000000000")
        sasl = f"127.0.0.1:{port + 1}"

        def user(name: str) -> dict[str, Any]:
            # 64 KiB batches: one request is a small part of a window's quota, so two connections
            # sharing it overshoot by little (each may pass one request before it is muted).
            return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": name,
                    "sasl.password": f"{name}-secret", "batch.size": 65536}

        a1, a2, vip, bob = Load("a1"), Load("a2"), Load("vip"), Load("b1")
        run_together(lambda: produce_for(sasl, topic, a1, RUN_S, **user("alice")),
                     lambda: produce_for(sasl, topic, a2, RUN_S, **user("alice")),
                     lambda: produce_for(sasl, topic, vip, RUN_S, **user("alice")),
                     lambda: produce_for(sasl, topic, bob, RUN_S, **user("bob")))
        alice = a1.rate + a2.rate
        print(f"users/alice producer_byte_rate {QUOTA}: a1 {a1.rate:.0f} + a2 {a2.rate:.0f} = {alice:.0f} B/s; "
              f"alice/vip {vip.rate:.0f} B/s; bob {bob.rate:.0f} B/s")
        assert not any(load.errors for load in (a1, a2, vip, bob))
        assert 0.5 * QUOTA <= alice <= 1.5 * QUOTA  # one quota for both client ids
        assert a1.throttles and a2.throttles
        assert not vip.throttles and not bob.throttles
        assert vip.rate >= 3 * alice and bob.rate >= 3 * alice
    finally:
        assert broker.stop() == 0
    assert "Traceback" not in broker.log_text()


def test_request_percentage(broker_factory: Any, topic: str) -> None:
    """request_percentage=10: the client's handling time is held near 10 % of one thread (measured
    by the broker and exported, sampled twice a second after the first window); librdkafka
    reports the throttle times.  Not lower: a throttle is capped at one window (Kafka's
    request-quota cap), so the client gets at least one request per second through, which on
    this loaded machine can take 20-40 ms of the loop's wall-clock time, 2-4 % by itself."""
    port = free_port()
    broker = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}", "num.shards": 1, **WINDOWS})
    endpoint = Endpoint(port)
    create_topic(broker.bootstrap, topic)
    kafka_configs(broker.bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "busy",
                  "--add-config", f"request_percentage={PERCENT}")
    busy = Load("busy")
    rates: list[float] = []

    def watch() -> None:
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            value = endpoint.value("kafka_server_request_request_time", shard=0, user="", client_id="busy")
            if value is not None and time.monotonic() > deadline - RUN_S + SETTLE_S:
                rates.append(value)
            time.sleep(0.5)

    run_together(lambda: produce_for(broker.bootstrap, topic, busy, RUN_S, **{"linger.ms": 0, "acks": 1}), watch)
    throttle = endpoint.value("kafka_server_request_throttle_time", shard=0, user="", client_id="busy")
    print(f"request_percentage {PERCENT}: request-time {[round(r, 2) for r in rates]} %, throttle-time {throttle} ms, "
          f"{len(busy.throttles)} throttles reported to librdkafka")
    assert not busy.errors
    assert busy.throttles
    # Handling time is wall-clock time on the shard's loop (Kafka's thread time): on a loaded
    # machine one request can take tens of ms, a spike that one throttle (capped at one window)
    # does not fully offset, so the median and the mean are what is held.
    assert rates and statistics.median(rates) <= 1.5 * PERCENT and statistics.mean(rates) <= 2 * PERCENT
    assert endpoint.value("pyk_client_quota", shard=0, quota_type="Request", user="",
                          client_id="busy") == PERCENT


def test_describe_and_alter_with_kafka_configs(broker_factory: Any) -> None:
    broker = broker_factory()
    kafka_configs(broker.bootstrap, "--alter", "--entity-type", "users", "--entity-name", "alice",
                  "--entity-type", "clients", "--entity-default", "--add-config",
                  "producer_byte_rate=1024,request_percentage=12.5")
    kafka_configs(broker.bootstrap, "--alter", "--entity-type", "clients", "--entity-default",
                  "--add-config", "consumer_byte_rate=2048")
    out = kafka_configs(broker.bootstrap, "--describe", "--entity-type", "users", "--entity-name", "alice",
                        "--entity-type", "clients", "--entity-default")
    assert "producer_byte_rate=1024.0" in out and "request_percentage=12.5" in out, out
    out = kafka_configs(broker.bootstrap, "--describe", "--entity-type", "clients", "--entity-default")
    assert "consumer_byte_rate=2048.0" in out, out
    kafka_configs(broker.bootstrap, "--alter", "--entity-type", "users", "--entity-name", "alice",
                  "--entity-type", "clients", "--entity-default", "--delete-config", "request_percentage")
    out = kafka_configs(broker.bootstrap, "--describe", "--entity-type", "users", "--entity-name", "alice",
                        "--entity-type", "clients", "--entity-default")
    assert "producer_byte_rate=1024.0" in out and "request_percentage" not in out, out
    # survives a restart
    broker.restart()
    out = kafka_configs(broker.bootstrap, "--describe", "--entity-type", "clients", "--entity-default")
    assert "consumer_byte_rate=2048.0" in out, out
    bad = run_java(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--alter", "--entity-type", "clients",
                   "--entity-name", "x", "--add-config", "producer_byte_rate=-5", check=False)
    assert bad.returncode != 0 and "must be greater than 0" in bad.stdout + bad.stderr, bad


def test_pyk_quotas_cli(broker_factory: Any) -> None:
    broker = broker_factory()

    def pyk_quotas(*argv: str, ok: bool = True) -> str:
        done = subprocess.run([sys.executable, "-m", "pyk", "quotas", "--bootstrap", broker.bootstrap, *argv],
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode == 0) == ok, done
        return done.stdout + done.stderr

    pyk_quotas("alter", "--user", "alice", "--client-default", "--set", "producer_byte_rate=1048576",
               "--set", "request_percentage=50")
    pyk_quotas("alter", "--client-id", "app", "--set", "consumer_byte_rate=2048")
    out = pyk_quotas("describe")
    assert "user alice, client-id <default>" in out and "producer_byte_rate" in out and "1048576" in out, out
    assert "client-id app" in out and "consumer_byte_rate" in out, out
    # pyk's CLI and Kafka's ConfigCommand see the same quotas
    out = kafka_configs(broker.bootstrap, "--describe", "--entity-type", "clients", "--entity-name", "app")
    assert "consumer_byte_rate=2048.0" in out, out
    pyk_quotas("alter", "--user", "alice", "--client-default", "--delete", "request_percentage")
    out = pyk_quotas("describe", "--user", "alice", "--client-default")
    assert "producer_byte_rate" in out and "request_percentage" not in out, out
    assert "Invalid configuration key bogus" in pyk_quotas("alter", "--client-id", "app", "--set", "bogus=1", ok=False)
