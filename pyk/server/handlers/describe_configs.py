"""DescribeConfigs: the effective configuration of topics and of this broker, with sources.

A topic key's value comes from, in order: the topic's own override (DYNAMIC_TOPIC_CONFIG), the
broker key it defaults from when that is set in server.properties/--override
(STATIC_BROKER_CONFIG), else Kafka's default (DEFAULT_CONFIG).  Synonyms (v1+) list that chain,
as Kafka does, so tools such as kafka-configs can show where a value came from.
"""

from __future__ import annotations

from typing import Any

from pyk.config import KEYS
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import TOPIC_CONFIGS
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for

API_KEY = ApiKey.DESCRIBE_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 4

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
# ConfigSource values of DescribeConfigsResponse v1+
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
# ConfigType values (v3+)
_CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6, "list": 7, "class": 8, "password": 9}


def _entry(name: str, value: str | None, source: int, synonyms: list[dict[str, Any]], type_name: str, doc: str,
           read_only: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "read_only": read_only, "is_default": source == DEFAULT_CONFIG,
            "config_source": source, "is_sensitive": False, "synonyms": synonyms,
            "config_type": _CONFIG_TYPES.get(type_name, 2), "documentation": doc}


def topic_config_entries(services: ShardServices, info: Any, keys: list[str] | None, with_synonyms: bool,
                         with_docs: bool) -> list[dict[str, Any]]:
    effective = services.admin.topic_log_config(info)
    entries = []
    for name, spec in TOPIC_CONFIGS.items():
        if keys is not None and name not in keys:
            continue
        chain = []
        if name in info.configs:
            chain.append({"name": name, "value": info.configs[name], "source": DYNAMIC_TOPIC_CONFIG})
        static_key = next((k for k in spec.server_keys if k in services.config.raw), None)
        if static_key:
            chain.append({"name": static_key, "value": services.config.raw[static_key], "source": STATIC_BROKER_CONFIG})
        source = chain[0]["source"] if chain else DEFAULT_CONFIG
        value = effective.value_string(name)
        if spec.server_key:
            chain.append({"name": spec.server_key, "value": spec.kafka_default, "source": DEFAULT_CONFIG})
        entries.append(_entry(name, value, source, chain if with_synonyms else [], spec.type_name,
                              spec.doc if with_docs else None, read_only=False))
    return entries


def _broker_entries(services: ShardServices, keys: list[str] | None, with_synonyms: bool, with_docs: bool) -> list[dict[str, Any]]:
    entries = []
    for name, key in KEYS.items():
        if keys is not None and name not in keys:
            continue
        raw = services.config.raw.get(name, key.default)
        source = STATIC_BROKER_CONFIG if name in services.config.raw else DEFAULT_CONFIG
        synonyms = [{"name": name, "value": raw, "source": source}] if with_synonyms else []
        entries.append(_entry(name, raw, source, synonyms, key.type_name, key.doc if with_docs else None, read_only=True))
    return entries


def _describe(services: ShardServices, resource: dict[str, Any], with_synonyms: bool, with_docs: bool) -> list[dict[str, Any]]:
    rtype, rname = resource["resource_type"], resource["resource_name"]
    keys = resource.get("configuration_keys")
    if rtype == TOPIC:
        info = services.metadata.get(rname)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {rname!r} does not exist")
        return topic_config_entries(services, info, keys, with_synonyms, with_docs)
    if rtype == BROKER:
        if rname not in ("", str(services.node_id)):
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"this is broker {services.node_id}, not {rname!r}")
        return _broker_entries(services, keys, with_synonyms, with_docs)
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"resource type {rtype} is not supported (2 topic, 4 broker)")


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    with_synonyms = version >= 1 and request.get("include_synonyms", False)
    with_docs = version >= 3 and request.get("include_documentation", False)
    results = []
    for resource in request["resources"]:
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None,
                                 "resource_type": resource["resource_type"], "resource_name": resource["resource_name"],
                                 "configs": []}
        try:
            entry["configs"] = _describe(services, resource, with_synonyms, with_docs)
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"describe configs of {resource['resource_name']}")
        results.append(entry)
    return {"throttle_time_ms": 0, "results": results}
