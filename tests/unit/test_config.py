"""Server configuration: Kafka key names and defaults, file + overrides, clear failures."""

from __future__ import annotations

import logging

import pytest

from pyk.config import ConfigError, Listener, ServerConfig


def test_defaults_are_kafkas() -> None:
    cfg = ServerConfig({})
    assert cfg["log.segment.bytes"] == 1073741824
    assert cfg["log.retention.hours"] == 168
    assert cfg["num.partitions"] == 1
    assert cfg["message.max.bytes"] == 1048588
    assert cfg["socket.request.max.bytes"] == 104857600
    assert cfg["auto.create.topics.enable"] is True
    assert cfg.listeners == [Listener("PLAINTEXT", "127.0.0.1", 9092)]


def test_file_then_overrides(tmp_path) -> None:
    props = tmp_path / "server.properties"
    props.write_text("# comment\nnum.partitions=3\nlog.dirs = /a,/b\nlisteners=PLAINTEXT://127.0.0.1:1\\\n9\n")
    cfg = ServerConfig.load(str(props), ["num.partitions=5", "listeners=PLAINTEXT://127.0.0.1:19092"])
    assert cfg["num.partitions"] == 5
    assert cfg.log_dirs == ["/a", "/b"]
    assert cfg.listeners[0].port == 19092
    assert cfg.source_of("num.partitions") == "static"
    assert cfg.source_of("log.retention.hours") == "default"


def test_continuation_lines_join(tmp_path) -> None:
    props = tmp_path / "server.properties"
    props.write_text("listeners=PLAINTEXT://127.0.0.1:1\\\n9\n")
    assert ServerConfig.load(str(props)).listeners[0].port == 19


def test_wildcard_host_is_advertised_as_loopback() -> None:
    cfg = ServerConfig({"listeners": "PLAINTEXT://:9092"})
    assert cfg.advertised_listeners[0].host == "127.0.0.1"


def test_unknown_key_warns(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pyk.config"):
        cfg = ServerConfig.load(None, ["no.such.key=1"])
    assert cfg.unknown == ["no.such.key"]
    assert "unknown config key no.such.key" in caplog.text


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("num.partitions=0", "num.partitions"),
        ("num.partitions=abc", "num.partitions"),
        ("auto.create.topics.enable=yes", "expected true or false"),
        ("listeners=localhost:9092", "NAME://host:port"),
        ("log.message.timestamp.type=Foo", "CreateTime"),
        ("message.max.bytes=200000000", "socket.request.max.bytes"),
        ("novalue", "key=value"),
    ],
)
def test_bad_values_fail_clearly(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ServerConfig.load(None, [override])


def test_broker_id_is_node_id_alias() -> None:
    assert ServerConfig({"broker.id": "7"}).node_id == 7
    assert ServerConfig({"broker.id": "7", "node.id": "3"}).node_id == 3


def test_readme_lists_every_key() -> None:
    from pathlib import Path

    from pyk.config import KEYS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [k for k in KEYS if f"`{k}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
