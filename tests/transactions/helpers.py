"""Shared pieces of the transaction tests: a transactional confluent producer, read_committed /
read_uncommitted reads of a whole topic, and raw requests to the coordinator through pyk's own
client (pyk/client.py) for the APIs no client library exposes (DescribeTransactions, ...)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pyk.client import Cluster
from pyk.protocol.apis import ApiKey
from tests.helpers import confluent_consumer

TXN_COORDINATOR = 1  # FindCoordinator key type


def txn_producer(bootstrap: str, transactional_id: str, **conf: Any) -> Any:
    """An initialised transactional confluent Producer."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5, **conf})
    p.init_transactions(30)
    return p


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str, expect: int | None = None,
             timeout: float = 15.0) -> dict[int, list[tuple[int, bytes]]]:
    """partition -> [(offset, value)] of every record a consumer with `isolation` sees, read from
    the start until `expect` records arrived (or, without `expect`, until each partition is at its end)."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    c = confluent_consumer(bootstrap, **{"isolation.level": isolation, "enable.partition.eof": True})
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.3):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                out[m.partition()].append((m.offset(), m.value()))
            total = sum(len(v) for v in out.values())
            if (expect is not None and total >= expect) or (expect is None and len(at_end) == partitions):
                break
    finally:
        c.close()
    return out


def values(records: dict[int, list[tuple[int, bytes]]]) -> set[bytes]:
    return {v for recs in records.values() for _, v in recs}


async def _coordinator_request(bootstrap: str, transactional_id: str, api_key: ApiKey, version: int,
                               body: dict[str, Any]) -> dict[str, Any]:
    cluster = await Cluster.connect(bootstrap)
    try:
        found = await cluster.conn.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": TXN_COORDINATOR,
                                                                        "coordinator_keys": [transactional_id]})
        node = found["coordinators"][0]
        assert node["error_code"] == 0, node
        await cluster.metadata("__transaction_state")
        conn = await cluster.connection(node["node_id"])
        return await conn.request(api_key, version, body)
    finally:
        cluster.close()


def coordinator_request(bootstrap: str, transactional_id: str, api_key: ApiKey, version: int,
                        body: dict[str, Any]) -> dict[str, Any]:
    """One request to the coordinator of `transactional_id`; the decoded response."""
    return asyncio.run(_coordinator_request(bootstrap, transactional_id, api_key, version, body))


def describe(bootstrap: str, transactional_id: str) -> dict[str, Any]:
    resp = coordinator_request(bootstrap, transactional_id, ApiKey.DESCRIBE_TRANSACTIONS, 0,
                               {"transactional_ids": [transactional_id]})
    state = resp["transaction_states"][0]
    assert state["error_code"] == 0, state
    return state
