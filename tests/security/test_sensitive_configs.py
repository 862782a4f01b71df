"""Secrets in broker configs never leave the broker: DescribeConfigs on a BROKER resource answers
every PASSWORD-typed key (ssl.key.password, the JAAS lines, their listener overrides) and every key
of unknown type with a null value and is_sensitive, in its synonyms too, as Kafka does; the log
lines of a dynamic change hide them.  Checked through confluent-kafka's AdminClient, pyk's own
client (synonyms), `pyk configs describe --broker` and a dynamic change, against the broker of
tests/security/conftest.py, whose static config holds a key password and PLAIN JAAS lines.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from pyk.client import Cluster
from pyk.protocol.apis import ApiKey
from tests.security.conftest import SecureBroker
from tests.security.pki import KEY_PASSWORD

TIMEOUT = 20
SECRETS = (KEY_PASSWORD, "admin-secret", "alice-secret")  # the static config's key password and PLAIN passwords
SENSITIVE = ("ssl.key.password", "ssl.keystore.password", "ssl.truststore.password", "sasl.jaas.config",
             "listener.name.sasl_plaintext.plain.sasl.jaas.config", "listener.name.sasl_ssl.plain.sasl.jaas.config")


def _admin(broker: SecureBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _node(admin: AdminClient) -> str:
    return str(min(n.id for n in admin.describe_cluster().result(TIMEOUT).nodes))


def _describe(admin: AdminClient, node: str) -> dict[str, Any]:
    res = ConfigResource(ResourceType.BROKER, node)
    return admin.describe_configs([res])[res].result(TIMEOUT)


def _described_raw(broker: SecureBroker, node: str) -> list[dict[str, Any]]:
    """Every entry of DescribeConfigs v4 with synonyms and documentation, from pyk's own client."""
    async def call() -> dict[str, Any]:
        cluster = await Cluster.connect(broker.bootstrap)
        try:
            return await cluster.conn.request(ApiKey.DESCRIBE_CONFIGS, 4, {
                "resources": [{"resource_type": ResourceType.BROKER.value, "resource_name": node,
                               "configuration_keys": None}],
                "include_synonyms": True, "include_documentation": True})
        finally:
            cluster.close()

    result = asyncio.run(call())["results"][0]
    assert result["error_code"] == 0, result
    return result["configs"]


def test_password_keys_are_sensitive_and_valueless(broker: SecureBroker) -> None:
    admin = _admin(broker)
    node = _node(admin)
    entries = _describe(admin, node)
    for name in SENSITIVE:
        entry = entries[name]
        assert entry.is_sensitive and entry.value is None, (name, entry.value)
    assert entries["ssl.key.password"].source == ConfigSource.STATIC_BROKER_CONFIG.value  # set, and said where
    # Not secrets: a listener override of a plain key keeps its value, and so do ordinary keys.
    assert not entries["listener.name.mtls.ssl.client.auth"].is_sensitive
    assert entries["listener.name.mtls.ssl.client.auth"].value == "required"
    assert entries["ssl.keystore.location"].value == broker.overrides["ssl.keystore.location"]
    assert not entries["message.max.bytes"].is_sensitive
    for entry in entries.values():
        for secret in SECRETS:
            assert secret not in (entry.value or ""), entry.name
    raw = _described_raw(broker, node)
    by_name = {e["name"]: e for e in raw}
    assert by_name["ssl.key.password"]["synonyms"] == [{"name": "ssl.key.password", "value": None, "source": 4}]
    assert by_name["ssl.key.password"]["config_type"] == 9  # PASSWORD
    assert by_name["listener.name.sasl_ssl.plain.sasl.jaas.config"]["config_type"] == 0  # UNKNOWN, as Kafka's
    for e in raw:
        texts = [e["value"] or "", *(s["value"] or "" for s in e["synonyms"])]
        assert not any(secret in text for secret in SECRETS for text in texts), e


def test_dynamic_secret_is_hidden_in_answers_and_logs(broker: SecureBroker) -> None:
    """A listener override set at run time is a key of unknown type to the broker (as it is to
    Kafka's when the mechanism is named): described as sensitive, logged as [hidden].  A PASSWORD
    key pyk cannot change at run time is refused without its value in the answer."""
    admin = _admin(broker)
    node = _node(admin)
    secret = "dynamic-jaas-secret"
    name = "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"
    res = ConfigResource(ResourceType.BROKER, node, incremental_configs=[
        ConfigEntry(name, f'org.apache.kafka.common.security.scram.ScramLoginModule required password="{secret}";',
                    incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(TIMEOUT)
    entry = _describe(admin, node)[name]
    assert entry.is_sensitive and entry.value is None
    assert entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    refused = ConfigResource(ResourceType.BROKER, node, incremental_configs=[
        ConfigEntry("ssl.key.password", secret, incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([refused])[refused].result(TIMEOUT)
    error = info.value.args[0]
    assert error.name() == "INVALID_REQUEST" and "ssl.key.password" in error.str() and secret not in error.str()
    log = broker.log_text()
    assert f"'{name}': '[hidden]'" in log
    assert secret not in log


def test_pyk_configs_describe_broker_shows_no_secret(broker: SecureBroker) -> None:
    node = _node(_admin(broker))
    done = subprocess.run([sys.executable, "-m", "pyk", "configs", "--bootstrap", broker.bootstrap, "describe",
                           "--broker", node], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ssl.key.password" in done.stdout and "(sensitive)" in done.stdout
    assert not any(secret in done.stdout for secret in SECRETS)
