"""Fixtures of the differential suite: one Apache Kafka (the session's) and one pyk per module."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.differential.peer import Known, Peer, assert_same, normalise
from tests.helpers import BrokerProcess, ExternalBroker
from tests.kafka import ApacheKafka


@dataclass
class Pair:
    """Apache Kafka and pyk, side by side."""

    kafka: Peer
    pyk: Peer

    def same(self, scenario: Callable[[Peer], Any], known: Iterable[Known] = (), drop: Iterable[str] = ()) -> Any:
        """Runs `scenario` against Kafka, then pyk, and asserts the normalised results equal up to
        the `known` differences (leaving out the keys in `drop`); returns Kafka's normalised result."""
        kafka = normalise(scenario(self.kafka), drop)
        pyk = normalise(scenario(self.pyk), drop)
        assert_same(kafka, pyk, known)
        return kafka


@pytest.fixture(scope="module")
def pair(apache_kafka: ApacheKafka, broker: BrokerProcess | ExternalBroker) -> Iterator[Pair]:
    p = Pair(Peer("kafka", apache_kafka.bootstrap), Peer("pyk", broker.bootstrap))
    p.kafka.ready()
    p.pyk.ready()
    try:
        yield p
    finally:
        p.kafka.close()
        p.pyk.close()
