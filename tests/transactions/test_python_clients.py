"""The transactional producers of kafka-python 3.0.12 and aiokafka 0.14 against `pyk serve`
(2 shards): commit makes the writes visible to read_committed consumers, abort hides them, and
send_offsets_to_transaction commits the group's offsets with the transaction."""

from __future__ import annotations

import asyncio

from tests.helpers import create_topic, wait_for
from tests.transactions.helpers import describe, read_all, values

PARTITIONS = 2


def _committed_offset(bootstrap: str, group: str, topic: str, partition: int) -> int | None:
    from confluent_kafka import TopicPartition

    from tests.helpers import confluent_consumer

    c = confluent_consumer(bootstrap, **{"group.id": group})
    try:
        return c.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        c.close()


def test_kafka_python_transactions(broker, topic):
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    create_topic(broker.bootstrap, topic, PARTITIONS)
    tid, group = f"{topic}-tx", f"{topic}-g"
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=tid, request_timeout_ms=20000)
    try:
        p.init_transactions()
        p.begin_transaction()
        for i in range(10):
            p.send(topic, value=b"aborted%d" % i, partition=i % PARTITIONS)
        p.flush()
        p.abort_transaction()
        p.begin_transaction()
        for i in range(10):
            p.send(topic, value=b"kept%d" % i, partition=i % PARTITIONS)
        p.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(42, "", -1)}, group)
        p.commit_transaction()
    finally:
        p.close(timeout=10)
    assert values(read_all(broker.bootstrap, topic, PARTITIONS, "read_committed", expect=10)) == {
        b"kept%d" % i for i in range(10)}
    assert len(values(read_all(broker.bootstrap, topic, PARTITIONS, "read_uncommitted", expect=20))) == 20
    assert wait_for(lambda: _committed_offset(broker.bootstrap, group, topic, 0) == 42)
    assert describe(broker.bootstrap, tid)["transaction_state"] == "CompleteCommit"


def test_aiokafka_transactions(broker, topic):
    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    create_topic(broker.bootstrap, topic, PARTITIONS)
    tid, group = f"{topic}-tx", f"{topic}-g"

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=tid, request_timeout_ms=20000)
        await p.start()
        try:
            async with p.transaction():
                for i in range(10):
                    await p.send(topic, value=b"kept%d" % i, partition=i % PARTITIONS)
                await p.send_offsets_to_transaction({TopicPartition(topic, 1): 7}, group)
            try:
                async with p.transaction():
                    for i in range(10):
                        await p.send_and_wait(topic, value=b"aborted%d" % i, partition=i % PARTITIONS)
                    raise RuntimeError("abort this one")
            except RuntimeError:
                pass
        finally:
            await p.stop()

    asyncio.run(asyncio.wait_for(run(), 60))
    assert values(read_all(broker.bootstrap, topic, PARTITIONS, "read_committed", expect=10)) == {
        b"kept%d" % i for i in range(10)}
    assert len(values(read_all(broker.bootstrap, topic, PARTITIONS, "read_uncommitted", expect=20))) == 20
    assert wait_for(lambda: _committed_offset(broker.bootstrap, group, topic, 1) == 7)
    assert describe(broker.bootstrap, tid)["transaction_state"] == "CompleteAbort"
