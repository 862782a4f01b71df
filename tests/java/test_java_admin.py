"""The Java AdminClient (kafka-clients 4.1) against `pyk serve`.

One JVM runs every scenario of tests/java/src/clients/AdminScenarios.java; the expected values are those
Apache Kafka 4.1 gives the same program (single node), except where pyk's shards show as nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BrokerProcess, ExternalBroker
from tests.java.scenarios import ok, run_scenarios

Results = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def results(broker: BrokerProcess | ExternalBroker, java_classes: Path) -> Results:
    return run_scenarios(java_classes, "clients.AdminScenarios", broker.bootstrap, "java-admin")


def test_topics_create_describe_grow_delete(results: Results) -> None:
    r = ok(results, "topics")
    assert r["create_again"] == "TopicExistsException"
    assert r["created"]["name"] == "java-admin-topics" and r["created"]["id_set"] and not r["created"]["internal"]
    # [partition, leader, replicas, isr]: one replica each, led by some node.
    assert [p[0] for p in r["created"]["partitions"]] == [0, 1]
    assert [p[0] for p in r["grown"]["partitions"]] == [0, 1, 2, 3, 4]
    assert all(p[1] is not None and p[2:] == [1, 1] for p in r["grown"]["partitions"])
    assert r["shrink"] == "InvalidPartitionsException"
    assert r["cleanup_policy"] == "compact"
    assert r["retention_ms"] == ["3600000", "DYNAMIC_TOPIC_CONFIG"]
    assert (r["listed_before_delete"], r["listed_after_delete"]) == (True, False)
    assert r["describe_deleted"] == "UnknownTopicOrPartitionException"


def test_topics_by_id(results: Results) -> None:
    r = ok(results, "topics-by-id")
    assert r["described"]["name"] == "java-admin-by-id"
    assert [p[0] for p in r["described"]["partitions"]] == [0, 1, 2]
    assert r["same_id"] is True
    assert r["unknown_id"] == "UnknownTopicIdException"
    assert r["listed_after_delete"] is False


def test_incremental_alter_configs(results: Results) -> None:
    r = ok(results, "configs")
    policy = r["set"].pop("cleanup.policy")
    assert r["set"] == {
        "retention.ms": {"value": "7200000", "source": "DYNAMIC_TOPIC_CONFIG", "default": False},
        "max.message.bytes": {"value": "2097152", "source": "DYNAMIC_TOPIC_CONFIG", "default": False},
    }
    # APPEND to an unset list key starts from its default, as in Kafka ("delete,compact"; pyk
    # describes cleanup.policy's items in sorted order).
    assert sorted(policy.pop("value").split(",")) == ["compact", "delete"]
    assert policy == {"source": "DYNAMIC_TOPIC_CONFIG", "default": False}
    assert r["deleted"] == {"retention.ms": {"value": "604800000", "source": "DEFAULT_CONFIG", "default": True}}
    assert r["bad_value"] == "InvalidConfigurationException"


def test_delete_records_and_list_offsets(results: Results) -> None:
    r = ok(results, "delete-records-list-offsets")
    base = 1_700_000_000_000
    assert r["before"] == {
        "earliest": {"offset": 0, "timestamp": -1}, "latest": {"offset": 10, "timestamp": -1},
        "max_timestamp": {"offset": 9, "timestamp": base + 9}, "for_timestamp": {"offset": 4, "timestamp": base + 4},
        "after_last": {"offset": -1, "timestamp": -1},
    }
    assert r["low_watermark"] == 6
    assert r["after"] == {"earliest": {"offset": 6, "timestamp": -1}, "latest": {"offset": 10, "timestamp": -1},
                          "for_timestamp": {"offset": 6, "timestamp": base + 6}}
    assert r["beyond_end"] == "OffsetOutOfRangeException"
    assert r["delete_all_low_watermark"] == 10


def test_describe_cluster(broker: BrokerProcess | ExternalBroker, results: Results) -> None:
    r = ok(results, "describe-cluster")
    assert r["cluster_id"]
    assert r["controller"] in [n[0] for n in r["nodes"]]
    if isinstance(broker, BrokerProcess):  # each shard is a node (docs/compatibility.md)
        assert [n[1:] for n in r["nodes"]] == [["127.0.0.1", broker.port + i] for i in range(broker.shards)]


def test_consumer_group_admin(results: Results) -> None:
    r = ok(results, "consumer-groups")
    [[group, _type, state, _protocol]] = r["listed"]
    assert (group, state) == ("java-admin-group", "Empty")
    assert r["described"] == {"state": "Empty", "type": "Classic", "members": 0, "simple": True,
                              "coordinator": r["described"]["coordinator"]}
    assert r["offsets"] == {"java-admin-groups-0": [3, "java"], "java-admin-groups-1": [0, ""]}
    assert r["batched"] == {"java-admin-group": 2, "java-admin-no-such-group": 0}
    assert r["altered"] == {"java-admin-groups-0": [5, "altered"], "java-admin-groups-1": [0, ""]}
    assert r["after_offset_delete"] == {"java-admin-groups-0": [5, "altered"]}
    assert r["listed_after_delete"] is False
    # DescribeGroups v0-v5 describe an unknown group as Dead; v6 (Kafka 4.0+) answers GROUP_ID_NOT_FOUND.
    assert r["described_after_delete"] in ("Dead", "GroupIdNotFoundException")
    assert r["delete_again"] == "GroupIdNotFoundException"


def test_describe_producers(results: Results) -> None:
    r = ok(results, "describe-producers")
    [p] = r["producers"]
    assert p["producer_id"] >= 0
    assert (p["epoch"], p["last_sequence"], p["last_timestamp_set"]) == (0, 6, True)
    assert (p["coordinator_epoch"], p["txn_start_offset"]) == (None, None)
