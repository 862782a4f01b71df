"""LogConfig: server synonyms, Kafka defaults, override validation, DescribeConfigs rendering."""

from __future__ import annotations

import pytest

from pyk.config import ConfigError, ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import TOPIC_CONFIGS, LogConfig


def test_defaults_follow_server_keys() -> None:
    config = LogConfig.from_server(ServerConfig({"log.segment.bytes": "12345", "log.index.interval.bytes": "10",
                                                 "message.max.bytes": "5000", "log.cleanup.policy": "compact"}))
    assert config.segment_bytes == 12345
    assert config.index_interval_bytes == 10
    assert config.max_message_bytes == 5000
    assert config.cleanup_policy == ("compact",)
    assert config.overrides == {}


@pytest.mark.parametrize(("server", "expected"), [
    ({}, 168 * 3_600_000),
    ({"log.retention.hours": "1"}, 3_600_000),
    ({"log.retention.minutes": "5", "log.retention.hours": "1"}, 300_000),
    ({"log.retention.ms": "42", "log.retention.minutes": "5"}, 42),
    ({"log.retention.ms": "-1"}, -1),
])
def test_retention_synonym_order(server: dict[str, str], expected: int) -> None:
    assert LogConfig.from_server(ServerConfig(server)).retention_ms == expected


def test_plain_mapping_server_and_roll_hours() -> None:
    config = LogConfig.from_server({"log.roll.hours": 2, "log.preallocate": True, "compression.type": "zstd"})
    assert config.segment_ms == 7_200_000
    assert config.preallocate is True
    assert config.target_codec == 4
    assert config.flush_messages == 2**63 - 1  # Kafka default when the server says nothing


def test_decompression_bound_is_broker_wide() -> None:
    """message.decompressed.max.bytes, else socket.request.max.bytes; topic overrides keep it,
    and it is no topic key (DescribeConfigs does not list it)."""
    assert LogConfig().max_decompressed_bytes == 104_857_600
    assert LogConfig.from_server(ServerConfig({})).max_decompressed_bytes == 104_857_600
    assert LogConfig.from_server(ServerConfig({"socket.request.max.bytes": "2000000"})).max_decompressed_bytes == 2_000_000
    config = LogConfig.from_server(ServerConfig({"message.decompressed.max.bytes": "5000000"}))
    assert config.max_decompressed_bytes == 5_000_000
    topic = config.with_overrides({"max.message.bytes": "100"})
    assert topic.max_decompressed_bytes == topic.defaults().max_decompressed_bytes == 5_000_000
    assert "message.decompressed.max.bytes" not in dict((name, v) for name, v, _ in topic.describe())
    with pytest.raises(ConfigError, match="message.decompressed.max.bytes"):
        ServerConfig({"message.decompressed.max.bytes": "0"})


def test_overrides_merge_and_describe() -> None:
    base = LogConfig()
    config = base.with_overrides({"segment.bytes": "2048", "cleanup.policy": "delete,compact"})
    config = config.with_overrides({"message.timestamp.type": "LogAppendTime"})
    assert config.segment_bytes == 2048 and config.log_append_time
    assert config.cleanup_policy == ("compact", "delete")
    assert config.overrides == {"segment.bytes": "2048", "cleanup.policy": "delete,compact",
                                "message.timestamp.type": "LogAppendTime"}
    described = {name: (value, override) for name, value, override in config.describe()}
    assert described["segment.bytes"] == ("2048", True)
    assert described["preallocate"] == ("false", False)
    assert described["cleanup.policy"] == ("compact,delete", True)
    assert set(described) == set(TOPIC_CONFIGS)
    assert config.defaults().overrides == {}
    assert TOPIC_CONFIGS["retention.ms"].server_key == "log.retention.ms"


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("no.such.key", "1", "unknown topic config"),
    ("segment.bytes", "ten", "expected an integer"),
    ("segment.bytes", "13", "[14,"),
    ("compression.type", "brotli", "expected one of"),
    ("cleanup.policy", "keep", "compact and/or delete"),
    ("preallocate", "yes", "true or false"),
    ("min.cleanable.dirty.ratio", "2", "[0.0, 1.0]"),
])
def test_bad_overrides(key: str, value: str, fragment: str) -> None:
    with pytest.raises(KafkaError) as err:
        LogConfig().with_overrides({key: value})
    assert err.value.code == ErrorCode.INVALID_CONFIG
    assert fragment in str(err.value) and key in str(err.value)
