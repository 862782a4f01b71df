"""Server configuration: Kafka key names and defaults, file + overrides, clear failures."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from pyk.config import (
    ConfigError,
    Listener,
    ServerConfig,
    check_dynamic,
    config_type,
    loggable,
    maybe_sensitive,
)


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


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["listeners=INTERNAL://127.0.0.1:1"], "INTERNAL is not in listener.security.protocol.map"),
        (["listeners=PLAINTEXT://127.0.0.1:1", "listener.security.protocol.map=PLAINTEXT:TLS"], "NAME:PROTOCOL"),
        (["listeners=SASL_PLAINTEXT:/127.0.0.1:1"], "expected NAME://host:port, found 'SASL_PLAINTEXT:/127.0.0.1:1'"),
        (["listeners=PLAINTEXT://127.0.0.1"], "missing port"),
    ],
)
def test_listener_security_protocols(overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ServerConfig.load(None, overrides)
    assert fragment in str(info.value)


def test_listener_name_mapped_to_a_served_protocol() -> None:
    cfg = ServerConfig.load(None, ["listeners=INTERNAL://127.0.0.1:1,PLAINTEXT://[::1]:2",
                                   "listener.security.protocol.map=INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT"])
    assert cfg.listeners == [Listener("INTERNAL", "127.0.0.1", 1), Listener("PLAINTEXT", "::1", 2)]


def test_serve_refuses_an_unusable_security_setup(tmp_path) -> None:
    """A TLS listener without a keystore, or SASL with a mechanism pyk does not serve, stops
    start-up before any shard runs, naming the key."""
    for overrides, fragment in [
        (["listeners=SSL://127.0.0.1:0"], "listener SSL uses TLS but ssl.keystore.location is not set"),
        (["listeners=SASL_PLAINTEXT://127.0.0.1:0"],  # Kafka's default mechanism, GSSAPI, needs its JAAS line
         "GSSAPI is enabled on listener SASL_PLAINTEXT but listener.name.sasl_plaintext.gssapi.sasl.jaas.config is "
         "not set and no JAAS file is named"),
        (["listeners=SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms=PLAIN,DIGEST-MD5"],
         "sasl.enabled.mechanisms of listener SASL_PLAINTEXT is PLAIN,DIGEST-MD5"),
        (["listeners=SASL_PLAINTEXT://127.0.0.1:0", "sasl.enabled.mechanisms=PLAIN"],
         "PLAIN is enabled on listener SASL_PLAINTEXT but listener.name.sasl_plaintext.plain.sasl.jaas.config is "
         "not set"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "pyk", "serve", "--override", f"log.dirs={tmp_path}"]
            + [arg for o in overrides for arg in ("--override", o)],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert fragment in proc.stderr


def test_dynamic_layers_take_precedence() -> None:
    # per-node dynamic > cluster-default dynamic > static > default
    static = ServerConfig({"message.max.bytes": "2000000", "log.retention.hours": "24"})
    cfg = static.with_dynamic({"message.max.bytes": "1500000", "log.retention.ms": "1000"},
                              {"message.max.bytes": "1200000"})
    assert cfg["message.max.bytes"] == 1200000
    assert cfg.source_of("message.max.bytes") == "dynamic_broker"
    assert cfg.source_of("log.retention.ms") == "dynamic_default"
    assert cfg.source_of("log.retention.hours") == "static"
    assert cfg.text_of("log.retention.ms") == "1000"
    assert static.with_dynamic({}, {})["message.max.bytes"] == 2000000
    with pytest.raises(ConfigError, match="message.max.bytes"):
        static.with_dynamic({"message.max.bytes": "-1"}, {})


def test_only_dynamic_keys_change_at_run_time() -> None:
    check_dynamic(["log.retention.ms", "log.cleaner.threads", "my.plugin.key"])  # unknown keys: custom, allowed
    with pytest.raises(ConfigError, match=r"Cannot update these configs dynamically: Set\(log.dirs, node.id\)"):
        check_dynamic(["node.id", "log.dirs", "message.max.bytes"])


def test_password_keys_and_unknown_keys_are_sensitive() -> None:
    """Kafka's KafkaConfig.configType / maybeSensitive: PASSWORD keys and their listener overrides,
    and keys of unknown type (a mechanism's JAAS override, custom keys), never plain keys."""
    for name in ("ssl.key.password", "ssl.keystore.password", "ssl.truststore.password", "sasl.jaas.config",
                 "listener.name.sasl_ssl.ssl.key.password", "listener.name.sasl_ssl.sasl.jaas.config"):
        assert config_type(name) == "password" and maybe_sensitive(name), name
    assert config_type("listener.name.sasl_ssl.plain.sasl.jaas.config") is None
    assert maybe_sensitive("listener.name.sasl_ssl.plain.sasl.jaas.config") and maybe_sensitive("my.plugin.key")
    assert config_type("listener.name.mtls.ssl.client.auth") == "string"
    assert not maybe_sensitive("listener.name.mtls.ssl.client.auth") and not maybe_sensitive("message.max.bytes")
    assert loggable({"message.max.bytes": "5", "ssl.key.password": "s"}) == {"message.max.bytes": "5",
                                                                             "ssl.key.password": "[hidden]"}


def test_removed_kafka_3_keys_are_accepted_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pyk.config"):
        cfg = ServerConfig.load(None, ["log.message.format.version=2.8", "log.message.downconversion.enable=false"])
    assert cfg["log.message.format.version"] == "2.8"
    assert cfg.unknown == []
    assert "log.message.format.version was removed in Kafka 4.0" in caplog.text
    assert "log.message.downconversion.enable was removed in Kafka 4.0" in caplog.text
    with pytest.raises(ConfigError, match="log.message.format.version"):
        ServerConfig.load(None, ["log.message.format.version=banana"])


def test_listener_scoped_security_keys_are_known() -> None:
    from pyk.server.security.settings import setting

    cfg = ServerConfig({"listeners": "SASL_SSL://127.0.0.1:1", "ssl.client.auth": "requested",
                        "listener.name.sasl_ssl.ssl.client.auth": "required",
                        "listener.name.sasl_ssl.plain.sasl.jaas.config": "x required;",
                        "listener.name.sasl_ssl.scram-sha-256.connections.max.reauth.ms": "5000",
                        "listener.name.sasl_ssl.no.such.key": "1"})
    assert cfg.unknown == ["listener.name.sasl_ssl.no.such.key"]
    assert setting(cfg, "SASL_SSL", "ssl.client.auth") == "required"
    assert setting(cfg, "OTHER", "ssl.client.auth") == "requested"
    assert setting(cfg, "SASL_SSL", "connections.max.reauth.ms", "SCRAM-SHA-256") == 5000
    assert setting(cfg, "SASL_SSL", "connections.max.reauth.ms", "PLAIN") == 0
    assert setting(cfg, "SASL_SSL", "sasl.jaas.config", "PLAIN") == "x required;"
