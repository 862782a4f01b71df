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

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import confluent_watermarks, create_topic
from tests.kafka import run_java

CONFIG_COMMAND = "kafka.admin.ConfigCommand"
QUOTA = 512 * 1024  # bytes per second
RUN_S = 15.0
SETTLE_S = 5.0  # rates are measured after this: the first window lets a burst through (Kafka's Rate)
# Three one-second samples: the first burst is up to two windows' worth (the default 11 would
# let 10 s of quota through at once, as it does in Kafka).
WINDOWS = {"quota.window.num": 3}
VALUE = b"v" * 1000


def kafka_configs(bootstrap: str, *args: str) -> str:
    return run_java(CONFIG_COMMAND, "--bootstrap-server", bootstrap, *args).stdout


@dataclass
class Load:
    """One client's progress: bytes delivered (or consumed), throttle events, errors."""

    client_id: str
    delivered: int = 0  # bytes between SETTLE_S and the end of the run
    records: int = 0
    errors: list[Any] = field(default_factory=list)
    throttles: list[int] = field(default_factory=list)
    seconds: float = 0.0

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
    run_together(lambda: produce_for(broker.bootstrap, topic, slow, RUN_S),
                 lambda: produce_for(broker.bootstrap, topic, fast, RUN_S))
    print(f"producer_byte_rate {QUOTA}: slow {slow.rate:.0f} B/s ({len(slow.throttles)} throttles, "
          f"max {max(slow.throttles, default=0)} ms), fast {fast.rate:.0f} B/s")
    assert not slow.errors and not fast.errors
    assert 0.5 * QUOTA <= slow.rate <= 1.5 * QUOTA
    assert slow.throttles, "librdkafka reported no throttle time"
    assert not fast.throttles
    assert fast.rate >= 3 * slow.rate
    assert confluent_watermarks(broker.bootstrap, topic)[1] == slow.records + fast.records
