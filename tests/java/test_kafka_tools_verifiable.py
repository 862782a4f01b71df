"""Kafka's system-test clients against a pyk that crashes: VerifiableProducer (acks=all) and
VerifiableConsumer run while `pyk serve` is killed with SIGKILL and restarted, and every value the
producer reports acknowledged is consumed, at the offset the acknowledgement named. This is the
check of Kafka's own system tests (ProduceConsumeValidateTest: acked values must all be consumed),
made on the JSON event lines the two tools print."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BrokerFactory
from tests.helpers import BrokerProcess, create_topic, wait_for
from tests.kafka import java_command

PARTITIONS = 3
THROUGHPUT = 1000  # messages/s
KILLS = 2
STEP = 800  # acknowledgements seen before each crash and after the last restart: ~3 s of traffic in all


class JsonTool:
    """A Kafka verifiable tool running in the background, its JSON event lines in a file."""

    def __init__(self, workdir: Path, name: str, main_class: str, *args: str) -> None:
        self.out = workdir / f"{name}.jsonl"
        self.err = workdir / f"{name}.stderr"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(java_command(main_class, *args), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.out.read_text().splitlines():
            if line.startswith("{") and line.endswith("}"):  # a line cut short by a kill is skipped
                event = json.loads(line)
                if name is None or event["name"] == name:
                    found.append(event)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the tools' shutdown hook closes cleanly
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def report(self) -> str:
        return f"{self.out}:\n{self.out.read_text()[-3000:]}\n{self.err}:\n{self.err.read_text()[-3000:]}"


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[list[JsonTool]]:
    started: list[JsonTool] = []
    yield started
    for tool in started:
        tool.stop()


def test_acked_records_survive_kill9(broker_factory: BrokerFactory, tools: list[JsonTool], tmp_path: Path,
                                     topic: str) -> None:
    # No initial rebalance delay, as on the reference Kafka (tests/kafka.py): the consumer's group
    # forms again right after each restart instead of 3 s later.
    broker: BrokerProcess = broker_factory(group_initial_rebalance_delay_ms=0)
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    consumer = JsonTool(tmp_path, "consumer", "org.apache.kafka.tools.VerifiableConsumer",
                        "--bootstrap-server", broker.bootstrap, "--topic", topic, "--group-id", f"{topic}-g",
                        "--reset-policy", "earliest", "--verbose")
    tools.append(consumer)
    producer = JsonTool(tmp_path, "producer", "org.apache.kafka.tools.VerifiableProducer",
                        "--bootstrap-server", broker.bootstrap, "--topic", topic, "--acks", "-1",
                        "--max-messages", "-1", "--throughput", str(THROUGHPUT))
    tools.append(producer)

    # The consumer is in its group before the first crash, so it rejoins across each of them.
    wait_for(lambda: consumer.events("partitions_assigned"), timeout=60, what="the consumer's first assignment")
    # Crash the broker each time the producer has seen STEP more acknowledgements since the last
    # start; after the last restart, STEP more, then stop the producer (it flushes and closes).
    seen = 0
    for kill in range(1, KILLS + 2):
        wait_for(lambda n=seen + STEP: len(producer.events("producer_send_success")) >= n,
                 timeout=60, what=f"{STEP} acknowledgements after start {kill}")
        if kill > KILLS:
            break
        broker.kill9()
        seen = len(producer.events("producer_send_success"))
        broker.start()
    producer.stop()

    acked = {(e["partition"], e["offset"]): e["value"] for e in producer.events("producer_send_success")}
    # VerifiableProducer sets retries=0: a send in flight at a crash fails, as on Kafka.
    failed = {e["value"] for e in producer.events("producer_send_error")}
    sent = {str(v) for v in range(max(int(v) for v in [*acked.values(), *failed]) + 1)}
    assert set(acked.values()) | failed == sent, f"sends neither acknowledged nor failed\n{producer.report()}"
    assert len(acked) >= (KILLS + 1) * STEP * 0.9, producer.report()

    def consumed() -> dict[tuple[int, int], str]:
        return {(e["partition"], e["offset"]): e["value"] for e in consumer.events("record_data")}

    def missing() -> dict[tuple[int, int], str]:
        got = consumed()
        return {at: v for at, v in acked.items() if got.get(at) != v}

    deadline = time.monotonic() + 60
    while missing() and time.monotonic() < deadline:
        time.sleep(0.2)
    lost = missing()
    assert not lost, (f"{len(lost)} acknowledged records not consumed at their offsets, e.g. "
                      f"{sorted(lost.items())[:10]}\n{consumer.report()}")
    # Each value was acknowledged at one offset only (a send is never retried: retries=0).
    assert len(set(acked.values())) == len(acked)
    consumer.stop()
    assert consumer.events("shutdown_complete"), consumer.report()
