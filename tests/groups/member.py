"""One consumer-group member in its own process, so a test can kill it without a LeaveGroup.

    python -m tests.groups.member --client confluent|kafka-python|aiokafka --bootstrap H:P
        --group G --topic T --out FILE [--strategy range|roundrobin|sticky|cooperative-sticky]
        [--instance-id ID] [--session-ms N] [--heartbeat-ms N] [--protocol classic|consumer]

It consumes from the earliest offset, and for every message it first appends a line to FILE and
then commits that message's offset + 1 (synchronously), so what FILE lists is processed and a
crash can only repeat messages, never lose them.  Rebalance callbacks append their own lines:

    {"ev": "msg", "p": partition, "o": offset, "v": value, "t": time}
    {"ev": "assign" | "revoke" | "lost", "parts": [partition, ...], "t": time}
    {"ev": "ready", "t": time}      (the consumer is built and subscribed)
    {"ev": "error", "code": name, "fatal": bool, "t": time}

SIGTERM closes the consumer cleanly (a LeaveGroup, unless static) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from typing import Any

STOP = False


def _stop(*_: Any) -> None:
    global STOP
    STOP = True


class Out:
    def __init__(self, path: str) -> None:
        self.fh = open(path, "a", buffering=1)  # line-buffered: a kill loses no written line

    def write(self, **event: Any) -> None:
        event["t"] = time.time()
        self.fh.write(json.dumps(event) + "\n")
        self.fh.flush()


def run_confluent(args: argparse.Namespace, out: Out) -> None:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    conf: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": args.heartbeat_ms, "fetch.wait.max.ms": 50,
        "partition.assignment.strategy": args.strategy, "topic.metadata.refresh.interval.ms": 1000,
    }  # fmt: skip
    if args.protocol == "consumer":
        # KIP-848: the broker owns the session timeout, heartbeat interval and assignment;
        # librdkafka refuses these settings with group.protocol=consumer.
        for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
            del conf[key]
        conf["group.protocol"] = "consumer"
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id

    def on_assign(consumer: Any, parts: list[Any]) -> None:
        out.write(ev="assign", parts=sorted(p.partition for p in parts))

    def on_revoke(consumer: Any, parts: list[Any]) -> None:
        out.write(ev="revoke", parts=sorted(p.partition for p in parts))

    def on_lost(consumer: Any, parts: list[Any]) -> None:
        out.write(ev="lost", parts=sorted(p.partition for p in parts))

    c = Consumer(conf)
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    out.write(ev="ready")
    try:
        while not STOP:
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                err = m.error()
                if err.code() != KafkaError._PARTITION_EOF:
                    # A fatal error arrives as one _FATAL event (whose own fatal() is False).
                    fatal = err.fatal() or err.code() == KafkaError._FATAL
                    out.write(ev="error", code=err.name(), fatal=fatal, text=err.str())
                    if fatal:
                        return
                continue
            out.write(ev="msg", p=m.partition(), o=m.offset(), v=m.value().decode())
            try:
                c.commit(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1)], asynchronous=False)
            except Exception as exc:  # a commit refused during a rebalance: the message repeats
                out.write(ev="error", code=f"commit: {exc}", fatal=False)
    finally:
        c.close()


def run_kafka_python(args: argparse.Namespace, out: Out) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                 "sticky": StickyPartitionAssignor, "cooperative-sticky": CooperativeStickyAssignor}

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            out.write(ev="revoke", parts=sorted(p.partition for p in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            out.write(ev="assign", parts=sorted(p.partition for p in assigned))

    # The coordinator's join/sync steps go to stderr: a test that times out shows where a member stopped.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("kafka.coordinator").setLevel(logging.INFO)
    c = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=args.session_ms,
                      heartbeat_interval_ms=args.heartbeat_ms, fetch_max_wait_ms=50,
                      partition_assignment_strategy=[assignors[args.strategy]],
                      group_instance_id=args.instance_id or None, metadata_max_age_ms=1000)
    # Known partitions before the first join: a leader without them assigns nothing and rejoins at
    # once when metadata lands, and in that path kafka-python 3.0.12 was seen (twice in ~40 runs)
    # to stop after sending its SyncGroup (pyk's log: that generation stable, the follower served).
    deadline = time.monotonic() + 30
    while not c.partitions_for_topic(args.topic) and time.monotonic() < deadline:
        time.sleep(0.1)
    c.subscribe([args.topic], listener=Listener())
    out.write(ev="ready")
    try:
        while not STOP:
            for tp, msgs in c.poll(timeout_ms=100).items():
                for m in msgs:
                    out.write(ev="msg", p=m.partition, o=m.offset, v=m.value.decode())
                    try:
                        c.commit({tp: OffsetAndMetadata(m.offset + 1, "", -1)})
                    except Exception as exc:
                        out.write(ev="error", code=f"commit: {exc!r}", fatal=False)
    finally:
        c.close()


def run_aiokafka(args: argparse.Namespace, out: Out) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    from aiokafka.structs import OffsetAndMetadata

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                 "sticky": StickyPartitionAssignor}

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: Any) -> None:
            out.write(ev="revoke", parts=sorted(p.partition for p in revoked))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            out.write(ev="assign", parts=sorted(p.partition for p in assigned))

    async def main() -> None:
        c = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=args.session_ms,
                             heartbeat_interval_ms=args.heartbeat_ms, fetch_max_wait_ms=50,
                             partition_assignment_strategy=[assignors[args.strategy]],
                             group_instance_id=args.instance_id or None, metadata_max_age_ms=1000)
        await c.start()
        c.subscribe([args.topic], listener=Listener())
        out.write(ev="ready")
        try:
            while not STOP:
                batches = await c.getmany(timeout_ms=100)
                for tp, msgs in batches.items():
                    for m in msgs:
                        out.write(ev="msg", p=m.partition, o=m.offset, v=m.value.decode())
                        try:
                            await c.commit({tp: OffsetAndMetadata(m.offset + 1, "")})
                        except Exception as exc:
                            out.write(ev="error", code=f"commit: {exc!r}", fatal=False)
        finally:
            await c.stop()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", default="confluent", choices=["confluent", "kafka-python", "aiokafka"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--instance-id", default="")
    parser.add_argument("--session-ms", type=int, default=2000)
    parser.add_argument("--heartbeat-ms", type=int, default=250)
    parser.add_argument("--protocol", default="classic", choices=["classic", "consumer"])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    out = Out(args.out)
    runner = {"confluent": run_confluent, "kafka-python": run_kafka_python, "aiokafka": run_aiokafka}[args.client]
    runner(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
