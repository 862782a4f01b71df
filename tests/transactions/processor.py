"""A consume-transform-produce processor (the exactly-once recipe of confluent-kafka's
examples/eos-transactions.py), run as a subprocess by test_exactly_once.py so it can be killed -9.

    python -m tests.transactions.processor BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID BATCH HOLD_AFTER

Reads INPUT with group GROUP (read_committed, no auto commit), writes each record's value
prefixed with b"out:" to OUTPUT, and every BATCH records commits the transaction together with
the consumer's positions (send_offsets_to_transaction).  Exits 0 once its committed positions
reach the end of INPUT.  Prints one line per commit ("committed N") for the test to follow.
With HOLD_AFTER > 0, after that many commits it writes one more batch, flushes it (the records
are in the log, their transaction open), prints "holding an open transaction of N records" and
waits to be killed: a test kills it inside a transaction without guessing when.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main() -> int:
    bootstrap, source, sink, group, tid, batch, hold_after = sys.argv[1:8]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5})
    producer.init_transactions(60)
    consumer.subscribe([source])
    producer.begin_transaction()
    pending = committed = commits = 0
    idle_since = time.monotonic()
    while True:
        msgs = consumer.consume(num_messages=int(batch) - pending, timeout=0.5)
        for m in msgs:
            if m.error():
                raise RuntimeError(str(m.error()))
            producer.produce(sink, key=m.key(), value=b"out:" + m.value(), partition=m.partition())
        pending += len(msgs)
        if msgs:
            idle_since = time.monotonic()
        if commits == int(hold_after) > 0 and pending >= int(batch):
            producer.flush(30)
            print(f"holding an open transaction of {pending} records", flush=True)
            while True:
                time.sleep(60)  # until the test kills this process
        if pending >= int(batch) or (pending and time.monotonic() - idle_since > 1.0):
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            committed += pending
            commits += 1
            pending = 0
            print(f"committed {committed}", flush=True)
            if _at_end(consumer, positions):
                return 0
            producer.begin_transaction()


def _at_end(consumer: Consumer, positions: list[TopicPartition]) -> bool:
    for tp in positions:
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10, cached=False)
        if tp.offset < high:
            return False
    return bool(positions)


if __name__ == "__main__":
    raise SystemExit(main())
