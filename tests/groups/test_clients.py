"""Consumer groups of kafka-python and aiokafka members, and one group whose members use three
different clients (librdkafka, kafka-python, aiokafka) and agree on the range assignor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.groups.conftest import Members, describe_members, wait_until
from tests.groups.test_rebalance import Feeder, balanced, consumed_values
from tests.helpers import create_topic, unique_topic


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("client", "strategy"), [
    ("kafka-python", "range"), ("kafka-python", "roundrobin"), ("kafka-python", "cooperative-sticky"),
    ("aiokafka", "range"), ("aiokafka", "sticky"),
])  # fmt: skip
def test_python_clients_in_groups(gbroker: Any, members: Members, client: str, strategy: str) -> None:
    topic = unique_topic(f"{client}-{strategy}")
    create_topic(gbroker.bootstrap, topic, partitions=4)
    feeder = Feeder(gbroker.bootstrap, topic, 4, per_second=200)
    # Pure-Python clients heartbeat from a thread / the event loop: a generous session timeout
    # keeps a loaded CI machine from expiring them between two heartbeats.
    opts = {"client": client, "strategy": strategy, "session_ms": 10000, "heartbeat_ms": 500}
    ms = [members.start(gbroker.bootstrap, f"g-{topic}", topic, **opts) for _ in range(2)]
    wait_until(lambda: balanced(ms, 4), 60, f"two {client} members sharing 4 partitions",
               detail=lambda: describe_members(ms))
    total = feeder.stop()
    wait_until(lambda: consumed_values(ms) >= set(range(total)), 45, "everything consumed",
               detail=lambda: describe_members(ms))
    for m in ms:
        assert m.stop() == 0, m.stderr()
    assert consumed_values(ms) == set(range(total))


@pytest.mark.timeout(150)
def test_mixed_client_group(gbroker: Any, members: Members) -> None:
    topic = unique_topic("mixed")
    create_topic(gbroker.bootstrap, topic, partitions=6)
    feeder = Feeder(gbroker.bootstrap, topic, 6, per_second=200)
    ms = [members.start(gbroker.bootstrap, f"g-{topic}", topic, client=client, strategy="range", session_ms=10000,
                        heartbeat_ms=500)
          for client in ("confluent", "kafka-python", "aiokafka")]
    wait_until(lambda: balanced(ms, 6) and all(len(m.owned()) == 2 for m in ms), 60,
               "three members of three clients with 2 partitions each", detail=lambda: describe_members(ms))
    total = feeder.stop()
    wait_until(lambda: consumed_values(ms) >= set(range(total)), 45, "everything consumed",
               detail=lambda: describe_members(ms))
    for m in ms:
        assert m.stop() == 0, m.stderr()
        assert m.messages(), f"{m.args[1]} consumed nothing"
    assert consumed_values(ms) == set(range(total))
