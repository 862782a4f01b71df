"""Dynamic broker configs (KIP-226) and keys Kafka 4.0 removed, through real admin clients.

AlterConfigs / IncrementalAlterConfigs on BROKER resources (one node, or the cluster default "")
with confluent-kafka's AdminClient and kafka-python's KafkaAdminClient (neither client can name
the default resource "": librdkafka refuses an empty name and kafka-python wants an integer, so
the default is set through pyk's own wire client, as Kafka's kafka-configs --entity-default
would): the value is described
with its source, applied live (a lowered message.max.bytes refuses the next larger produce; a new
log.retention.ms default deletes old segments of a topic without an override), kept across a
restart, removed by DELETE; read-only keys are refused naming the key.  Then topic keys Kafka 4.0
removed (message.format.version) are accepted as no-ops with a warning in the broker log.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, ResourceType

from pyk.client import Cluster
from pyk.protocol.apis import ApiKey
from tests.helpers import (
    ClientError,
    Rec,
    confluent_admin,
    confluent_produce,
    confluent_read_to_end,
    confluent_watermarks,
    create_topic,
    make_records,
    wait_for,
)

TIMEOUT = 20
DEFAULT = ""  # the cluster-wide default BROKER resource


def _result(future: Any) -> Any:
    return future.result(timeout=TIMEOUT)


def _node(admin: Any) -> str:
    """The id of the first node (shard 0) as a BROKER resource name."""
    return str(min(n.id for n in _result(admin.describe_cluster()).nodes))


def _describe(admin: Any, rtype: ResourceType, name: str) -> dict[str, Any]:
    res = ConfigResource(rtype, name)
    return _result(admin.describe_configs([res])[res])


def _incremental(admin: Any, name: str, validate_only: bool = False, **ops: tuple[AlterConfigOpType, str | None]) -> Any:
    """IncrementalAlterConfigs on BROKER `name`: key (with '_' for '.') -> (operation, value)."""
    entries = [ConfigEntry(k.replace("_", "."), v, incremental_operation=op) for k, (op, v) in ops.items()]
    res = ConfigResource(ResourceType.BROKER, name, incremental_configs=entries)
    return admin.incremental_alter_configs([res], validate_only=validate_only)[res]


def _set(admin: Any, name: str, **values: str) -> None:
    _result(_incremental(admin, name, **{k: (AlterConfigOpType.SET, v) for k, v in values.items()}))


async def _request(bootstrap: str, api_key: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    cluster = await Cluster.connect(bootstrap)
    try:
        return await cluster.conn.request(api_key, version, body)
    finally:
        cluster.close()


def _alter_default(bootstrap: str, validate_only: bool = False, name: str = DEFAULT,
                   **ops: tuple[AlterConfigOpType, str | None]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs on the cluster default BROKER resource (or `name`); (error code, message)."""
    configs = [{"name": k.replace("_", "."), "config_operation": op.value, "value": v} for k, (op, v) in ops.items()]
    body = {"resources": [{"resource_type": ResourceType.BROKER.value, "resource_name": name, "configs": configs}],
            "validate_only": validate_only}
    result = asyncio.run(_request(bootstrap, ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, body))["responses"][0]
    return result["error_code"], result["error_message"]


def _synonyms(bootstrap: str, node: str, key: str) -> list[tuple[int, str]]:
    """(source, value) of each synonym of a broker key, from DescribeConfigs v4 with include_synonyms."""
    body = {"resources": [{"resource_type": ResourceType.BROKER.value, "resource_name": node,
                           "configuration_keys": [key]}], "include_synonyms": True}
    result = asyncio.run(_request(bootstrap, ApiKey.DESCRIBE_CONFIGS, 4, body))["results"][0]
    assert result["error_code"] == 0, result
    return [(s["source"], s["value"]) for s in result["configs"][0]["synonyms"]]


def _set_default(bootstrap: str, **values: str) -> None:
    assert _alter_default(bootstrap, **{k: (AlterConfigOpType.SET, v) for k, v in values.items()})[0] == 0


def _failure(future: Any) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        future.result(timeout=TIMEOUT)
    return info.value.args[0]


def test_set_describe_sources_and_delete(broker_factory):
    # A static value, a cluster-default dynamic value over it, a per-node one over both; DELETE
    # peels them off again.
    b = broker_factory(message_max_bytes=2000000)
    admin = confluent_admin(b.bootstrap)
    node = _node(admin)
    configs = _describe(admin, ResourceType.BROKER, node)
    assert configs["message.max.bytes"].value == "2000000"
    assert configs["message.max.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert not configs["message.max.bytes"].is_read_only
    assert configs["log.dirs"].is_read_only

    _set_default(b.bootstrap, message_max_bytes="1500000")
    configs = _describe(admin, ResourceType.BROKER, node)
    entry = configs["message.max.bytes"]
    assert (entry.value, entry.source) == ("1500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    # Synonyms, most specific first (confluent-kafka keys them by name, so read them raw).
    assert _synonyms(b.bootstrap, node, "message.max.bytes") == [
        (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, "1500000"),
        (ConfigSource.STATIC_BROKER_CONFIG.value, "2000000"),
        (ConfigSource.DEFAULT_CONFIG.value, "1048588"),
    ]
    # The cluster default reaches the topic level: max.message.bytes of a topic without override.
    create_topic(b.bootstrap, "plain")
    topic = _describe(admin, ResourceType.TOPIC, "plain")["max.message.bytes"]
    assert (topic.value, topic.source) == ("1500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    _set(admin, node, message_max_bytes="1200000")
    entry = _describe(admin, ResourceType.BROKER, node)["message.max.bytes"]
    assert (entry.value, entry.source) == ("1200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert [source for source, _ in _synonyms(b.bootstrap, node, "message.max.bytes")] == [
        ConfigSource.DYNAMIC_BROKER_CONFIG.value, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
        ConfigSource.STATIC_BROKER_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value]
    if b.shards > 1:  # another shard is another node: the per-node value is not its own
        other = _describe(admin, ResourceType.BROKER, str(int(node) + 1))["message.max.bytes"]
        assert (other.value, other.source) == ("1500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    _result(_incremental(admin, node, message_max_bytes=(AlterConfigOpType.DELETE, None)))
    entry = _describe(admin, ResourceType.BROKER, node)["message.max.bytes"]
    assert (entry.value, entry.source) == ("1500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert _alter_default(b.bootstrap, message_max_bytes=(AlterConfigOpType.DELETE, None))[0] == 0
    entry = _describe(admin, ResourceType.BROKER, node)["message.max.bytes"]
    assert (entry.value, entry.source) == ("2000000", ConfigSource.STATIC_BROKER_CONFIG.value)


def test_message_max_bytes_applies_to_the_next_produce(broker_factory):
    b = broker_factory()
    create_topic(b.bootstrap, "sized")
    big = [Rec(key=None, value=b"x" * 20000)]
    assert confluent_produce(b.bootstrap, "sized", big) == [(0, 0)]
    _set_default(b.bootstrap, message_max_bytes="10000")
    with pytest.raises(ClientError, match="MSG_SIZE_TOO_LARGE"):
        confluent_produce(b.bootstrap, "sized", big, **{"message.timeout.ms": 5000})
    assert confluent_produce(b.bootstrap, "sized", [Rec(key=None, value=b"small")]) == [(0, 1)]


def test_retention_default_applies_to_topics_without_override(broker_factory):
    b = broker_factory(log_retention_check_interval_ms=200)
    admin = confluent_admin(b.bootstrap)
    create_topic(b.bootstrap, "aged")
    create_topic(b.bootstrap, "kept", config={"retention.ms": str(7 * 86400000)})
    two_hours_ago = int(time.time() * 1000) - 2 * 3600 * 1000
    old = make_records(3, ts_base=two_hours_ago)
    confluent_produce(b.bootstrap, "aged", old)
    confluent_produce(b.bootstrap, "kept", old)

    _set_default(b.bootstrap, log_retention_ms="3600000")
    entry = _describe(admin, ResourceType.TOPIC, "aged")["retention.ms"]
    assert (entry.value, entry.source) == ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    # The retention pass deletes the expired records of the topic that follows the default ...
    wait_for(lambda: confluent_watermarks(b.bootstrap, "aged") == (3, 3), timeout=30, what="aged records deleted")
    # ... while the topic override still wins (topic > dynamic > static > default).
    entry = _describe(admin, ResourceType.TOPIC, "kept")["retention.ms"]
    assert (entry.value, entry.source) == (str(7 * 86400000), ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert confluent_watermarks(b.bootstrap, "kept") == (0, 3)


def test_read_only_and_invalid_values_are_refused(broker_factory):
    b = broker_factory()
    admin = confluent_admin(b.bootstrap)
    node = _node(admin)
    for key, value in (("node.id", "7"), ("listeners", "PLAINTEXT://127.0.0.1:1"), ("log.retention.hours", "1")):
        error = _failure(_incremental(admin, node, **{key.replace(".", "_"): (AlterConfigOpType.SET, value)}))
        assert error.code() == KafkaError.INVALID_REQUEST
        assert f"Cannot update these configs dynamically: Set({key})" in error.str()
    code, message = _alter_default(b.bootstrap, log_dirs=(AlterConfigOpType.SET, "/elsewhere"))
    assert code == KafkaError.INVALID_REQUEST and "Cannot update these configs dynamically: Set(log.dirs)" in message
    error = _failure(_incremental(admin, node, log_cleaner_threads=(AlterConfigOpType.SET, "zero")))
    assert error.code() == KafkaError.INVALID_REQUEST and "log.cleaner.threads" in error.str()
    # A node that does not exist (librdkafka would wait for it: sent raw).
    code, message = _alter_default(b.bootstrap, name="99", message_max_bytes=(AlterConfigOpType.SET, "1000"))
    assert code == KafkaError.INVALID_REQUEST and "'99' is not a node" in message
    # validate_only checks a good change without applying it.
    assert _alter_default(b.bootstrap, validate_only=True, message_max_bytes=(AlterConfigOpType.SET, "1000"))[0] == 0
    _result(_incremental(admin, node, validate_only=True, message_max_bytes=(AlterConfigOpType.SET, "1000")))
    entry = _describe(admin, ResourceType.BROKER, node)["message.max.bytes"]
    assert (entry.value, entry.source) == ("1048588", ConfigSource.DEFAULT_CONFIG.value)


def test_legacy_alter_configs_and_restart(broker_factory):
    b = broker_factory()
    admin = confluent_admin(b.bootstrap)
    node = _node(admin)
    # Legacy AlterConfigs replaces the resource's whole dynamic set.
    _set(admin, node, log_cleaner_threads="2")
    res = ConfigResource(ResourceType.BROKER, node, set_config={"log.retention.bytes": "123456789"})
    _result(admin.alter_configs([res])[res])
    configs = _describe(admin, ResourceType.BROKER, node)
    assert (configs["log.retention.bytes"].value, configs["log.retention.bytes"].source) == (
        "123456789", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert configs["log.cleaner.threads"].source == ConfigSource.DEFAULT_CONFIG.value
    _set_default(b.bootstrap, log_cleaner_threads="2")
    del admin

    b.restart()
    admin = confluent_admin(b.bootstrap)
    configs = _describe(admin, ResourceType.BROKER, node)
    assert (configs["log.retention.bytes"].value, configs["log.retention.bytes"].source) == (
        "123456789", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert (configs["log.cleaner.threads"].value, configs["log.cleaner.threads"].source) == (
        "2", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)


def test_kafka_python_admin_alters_broker_configs(broker_factory):
    from kafka.admin import ConfigResource as KpConfigResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    b = broker_factory()
    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        kp.alter_configs([KpConfigResource(ConfigResourceType.BROKER, "1", configs={"log.segment.bytes": "5000000"})])
        described = kp.describe_configs([KpConfigResource(ConfigResourceType.BROKER, "1")])
    finally:
        kp.close()
    # kafka-python lists the keys set dynamically, with their source.
    assert described["broker"]["1"]["log.segment.bytes"]["value"] == "5000000"
    assert described["broker"]["1"]["log.segment.bytes"]["config_source"] == "DYNAMIC_BROKER_CONFIG"
    admin = confluent_admin(b.bootstrap)
    entry = _describe(admin, ResourceType.BROKER, "1")["log.segment.bytes"]
    assert (entry.value, entry.source) == ("5000000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)


def test_removed_topic_keys_are_accepted_as_no_ops(broker_factory):
    b = broker_factory()
    admin = confluent_admin(b.bootstrap)
    create_topic(b.bootstrap, "old-tools", config={"message.format.version": "2.8",
                                                   "message.downconversion.enable": "false"})
    configs = _describe(admin, ResourceType.TOPIC, "old-tools")
    assert (configs["message.format.version"].value, configs["message.format.version"].source) == (
        "2.8", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert configs["message.downconversion.enable"].value == "false"
    create_topic(b.bootstrap, "new-tools")
    plain = _describe(admin, ResourceType.TOPIC, "new-tools")["message.format.version"]
    assert (plain.value, plain.source) == ("3.0-IV1", ConfigSource.DEFAULT_CONFIG.value)  # Kafka 3.x's default
    wait_for(lambda: "message.format.version was removed in Kafka 4.0" in b.log_text(), what="warning in broker log")
    assert "message.downconversion.enable was removed in Kafka 4.0" in b.log_text()
    records = make_records(3)
    assert confluent_produce(b.bootstrap, "old-tools", records) == [(0, 0), (0, 1), (0, 2)]
    assert [r.value for r in confluent_read_to_end(b.bootstrap, "old-tools")] == [r.value for r in records]
    # A value Kafka 3.x would not have taken either is still refused.
    res = ConfigResource(ResourceType.TOPIC, "old-tools", set_config={"message.format.version": "banana"})
    assert _failure(admin.alter_configs([res])[res]).code() == KafkaError.INVALID_CONFIG
