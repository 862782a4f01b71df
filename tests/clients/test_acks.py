"""acks=0, 1 and all with each Python client, and acks=all against an unmeetable min.insync.replicas."""

from __future__ import annotations

import pytest

from tests.helpers import (
    PRODUCERS,
    ClientError,
    confluent_consume,
    confluent_produce,
    confluent_watermarks,
    create_topic,
    make_records,
    wait_for,
)

N = 50


def _acks_conf(client: str, acks: int) -> dict[str, object]:
    if client == "confluent":
        return {"acks": acks}
    return {"acks": "all" if acks == -1 else acks}


@pytest.mark.parametrize("acks", [0, 1, -1], ids=["acks0", "acks1", "acksall"])
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_acks(broker, topic, client, acks):
    create_topic(broker.bootstrap, topic)
    sent = make_records(N, prefix=f"{client}-acks{acks}")
    acked = PRODUCERS[client](broker.bootstrap, topic, sent, **_acks_conf(client, acks))
    if acks != 0:
        assert acked == [(0, i) for i in range(N)]
    # With acks=0 the broker sends nothing back: the records must still all land, in order.
    wait_for(lambda: confluent_watermarks(broker.bootstrap, topic)[1] == N, what=f"high watermark {N}")
    got = confluent_consume(broker.bootstrap, topic, 0, 0, N)
    assert [r.offset for r in got] == list(range(N))
    assert [r.content() for r in got] == [r.content() for r in sent]


def test_acks0_connection_keeps_serving_later_requests(broker, topic):
    """A producer mixing acks=0 produce requests with metadata requests on one connection."""
    create_topic(broker.bootstrap, topic)
    for round_ in range(3):
        confluent_produce(broker.bootstrap, topic, make_records(10, prefix=f"r{round_}"), acks=0)
    wait_for(lambda: confluent_watermarks(broker.bootstrap, topic)[1] == 30, what="high watermark 30")


def test_acks_all_below_min_insync_replicas(broker, topic):
    """min.insync.replicas=2 cannot be met by one node: acks=all gets NOT_ENOUGH_REPLICAS and appends
    nothing, while acks=1 on the same topic is unaffected (min ISR only applies to acks=all)."""
    create_topic(broker.bootstrap, topic, config={"min.insync.replicas": "2"})
    with pytest.raises(ClientError, match="NOT_ENOUGH_REPLICAS"):
        confluent_produce(broker.bootstrap, topic, make_records(3), acks=-1, retries=0)
    assert confluent_watermarks(broker.bootstrap, topic) == (0, 0)
    assert confluent_produce(broker.bootstrap, topic, make_records(3), acks=1) == [(0, 0), (0, 1), (0, 2)]
