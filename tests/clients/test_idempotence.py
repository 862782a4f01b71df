"""Idempotent producers (enable.idempotence): per-partition order kept, no duplicates, contiguous offsets.

Many small batches with up to 5 in flight per connection, so the broker's per-producer sequence
checks see a realistic pipeline.  Retries after a broker restart are covered in tests/durability.
"""

from __future__ import annotations

import pytest

from tests.helpers import CONSUMERS, PRODUCERS, Rec, confluent_watermarks, create_topic

CONF = {
    "confluent": {
        "enable.idempotence": True,
        "acks": -1,
        "retries": 1000,
        "linger.ms": 0,
        "batch.num.messages": 25,
        "max.in.flight.requests.per.connection": 5,
    },
    "kafka-python": {
        "enable_idempotence": True,
        "acks": "all",
        "retries": 1000,
        "batch_size": 1024,
        "max_in_flight_requests_per_connection": 5,
    },
    "aiokafka": {"enable_idempotence": True, "acks": "all", "max_batch_size": 1024},
}
COUNT = {"confluent": 3000, "kafka-python": 800, "aiokafka": 800}


@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_idempotent_producer_order_and_no_duplicates(broker, topic, client):
    n = COUNT[client]
    create_topic(broker.bootstrap, topic, partitions=2)
    # Interleave two partitions so batches for both are in flight at once.
    sent = [Rec(None, f"p{p}-{i:06d}".encode(), (), None, p) for i in range(n) for p in (0, 1)]
    acked = PRODUCERS[client](broker.bootstrap, topic, sent, **CONF[client])
    for p in (0, 1):
        assert [off for part, off in acked if part == p] == list(range(n)), f"acked offsets of partition {p}"
        assert confluent_watermarks(broker.bootstrap, topic, p) == (0, n)
        got = CONSUMERS["confluent"](broker.bootstrap, topic, p, 0, n)
        values = [r.value for r in got]
        assert len(values) == len(set(values)) == n, (
            f"partition {p}: {len(values)} read, {len(set(values))} distinct"
        )
        assert values == [f"p{p}-{i:06d}".encode() for i in range(n)]
        assert [r.offset for r in got] == list(range(n))
