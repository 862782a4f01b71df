"""pyk.server.quotas without a broker: Kafka's precedence of the eight user / client-id entities
(which quota applies and what it is measured as), entity paths as Kafka's ZooKeeper layout
spells them, and the rate and throttle time of Kafka's sampled Rate."""

from __future__ import annotations

import pytest

from pyk.errors import ErrorCode, KafkaError
from pyk.server.quotas import (
    ClientQuotas,
    QuotaType,
    check_entity,
    check_value,
    entity_path,
    parse_entity_path,
)

LEVELS = [  # Kafka's order, most specific first, with the (user, client id) tags each is measured as
    ("users/alice/clients/app", ("alice", "app")),
    ("users/alice/clients/<default>", ("alice", "app")),
    ("users/alice", ("alice", "")),
    ("users/<default>/clients/app", ("alice", "app")),
    ("users/<default>/clients/<default>", ("alice", "app")),
    ("users/<default>", ("alice", "")),
    ("clients/app", ("", "app")),
    ("clients/<default>", ("", "app")),
]


@pytest.mark.parametrize("level", range(len(LEVELS)))
def test_the_most_specific_entity_that_sets_the_key_applies(level: int) -> None:
    quotas = ClientQuotas()
    # every level from `level` down sets producer_byte_rate; each a different value
    quotas.configure({path: {"producer_byte_rate": 1000.0 * (i + 1)} for i, (path, _) in enumerate(LEVELS)
                      if i >= level}, samples=11, window_s=1)
    assert quotas.active
    quotas.record(QuotaType.PRODUCE, "User:alice", "app", 1, 0)
    [metric] = quotas.metrics(0)
    assert metric.quota == 1000.0 * (level + 1)
    assert (metric.user, metric.client_id) == LEVELS[level][1]


def test_each_key_resolves_on_its_own_and_unquoted_clients_are_not_measured() -> None:
    quotas = ClientQuotas()
    quotas.configure({"users/alice": {"producer_byte_rate": 10.0}, "clients/<default>": {"consumer_byte_rate": 20.0}},
                     samples=11, window_s=1)
    quotas.record(QuotaType.PRODUCE, "User:alice", "app", 1, 0)
    quotas.record(QuotaType.FETCH, "User:alice", "app", 1, 0)
    quotas.record(QuotaType.PRODUCE, "User:bob", "app", 1, 0)  # no producer quota for bob
    quotas.record(QuotaType.REQUEST, "User:alice", "app", 1, 0)  # no request quota at all
    got = {(m.quota_type, m.user, m.client_id, m.quota) for m in quotas.metrics(0)}
    assert got == {("Produce", "alice", "", 10.0), ("Fetch", "", "app", 20.0)}


def test_no_quota_no_flag() -> None:
    quotas = ClientQuotas()
    quotas.configure({"ips/127.0.0.1": {"connection_creation_rate": 5.0}}, samples=11, window_s=1)
    assert not quotas.active


def test_throttle_time_is_the_time_back_to_the_quota() -> None:
    """Kafka's Rate: the window counts as at least samples - 1 windows; the throttle time is
    (rate - quota) / quota x window."""
    quotas = ClientQuotas()
    quotas.configure({"clients/c": {"producer_byte_rate": 100.0}}, samples=11, window_s=1)
    assert quotas.record(QuotaType.PRODUCE, "User:u", "c", 1000, 0) == 0  # 1000 B over 10 s: the quota
    # 3000 B over the 10 s window: 300 B/s, twice over: 20 s to come back
    assert quotas.record(QuotaType.PRODUCE, "User:u", "c", 2000, 0) == 20000
    [metric] = quotas.metrics(0)
    assert metric.rate == pytest.approx(300.0)
    assert metric.throttle_time_ms == 20000
    # request_percentage throttles are capped at one window
    quotas.configure({"clients/c": {"request_percentage": 1.0}}, samples=11, window_s=1)
    assert quotas.record(QuotaType.REQUEST, "User:u", "c", 100.0, 0) == 1000


def test_entity_paths_are_kafkas() -> None:
    assert entity_path({"user": "alice", "client-id": None}) == "users/alice/clients/<default>"
    assert entity_path({"client-id": "a/b c*~"}) == "clients/a%2Fb%20c%2A%7E"
    assert entity_path({"user": "<default>"}) == "users/%3Cdefault%3E"  # a user so named is not the default
    for entity in ({"user": "a/b", "client-id": "x y"}, {"user": None}, {"ip": "10.0.0.1"}):
        assert parse_entity_path(entity_path(entity)) == entity


@pytest.mark.parametrize("entity,key,value,message", [
    ({}, "producer_byte_rate", 1.0, "Invalid empty client quota entity"),
    ({"group": "g"}, "producer_byte_rate", 1.0, "Unhandled client quota entity type: group"),
    ({"user": ""}, "producer_byte_rate", 1.0, "Empty user not supported"),
    ({"ip": "1.2.3.4", "user": "u"}, "connection_creation_rate", 1.0, "Invalid quota entity combination"),
    ({"ip": "not an ip"}, "connection_creation_rate", 1.0, "is not a valid IP"),
    ({"user": "u"}, "connection_creation_rate", 1.0, "Invalid configuration key connection_creation_rate"),
    ({"user": "u"}, "producer_byte_rate", 0.0, "must be greater than 0"),
    ({"user": "u"}, "producer_byte_rate", 1.5, "cannot be a fractional value"),
])
def test_bad_alterations(entity: dict[str, str | None], key: str, value: float, message: str) -> None:
    with pytest.raises(KafkaError) as raised:
        check_entity(entity)
        check_value(entity, key, value)
    assert raised.value.code == ErrorCode.INVALID_REQUEST and message in raised.value.message


def test_idle_sensors_expire_after_an_hour() -> None:
    quotas = ClientQuotas()
    quotas.configure({"clients/<default>": {"producer_byte_rate": 100.0}}, samples=11, window_s=1)
    quotas.record(QuotaType.PRODUCE, "User:u", "gone", 1, 0)
    quotas.record(QuotaType.PRODUCE, "User:u", "here", 1, 0)
    quotas.record(QuotaType.PRODUCE, "User:u", "here", 1, 3_000_000)
    assert {m.client_id for m in quotas.metrics(3_000_000)} == {"gone", "here"}
    assert {m.client_id for m in quotas.metrics(3_600_000)} == {"here"}
    quotas.record(QuotaType.PRODUCE, "User:u", "gone", 1, 3_600_000)  # back: measured afresh
    assert {m.client_id for m in quotas.metrics(3_600_000)} == {"gone", "here"}
