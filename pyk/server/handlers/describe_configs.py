"""DescribeConfigs: the effective configuration of topics and of this broker, with sources.

A topic key's value comes from, in order: the topic's own override (DYNAMIC_TOPIC_CONFIG), then
for the broker keys it defaults from (retention.ms: log.retention.ms, .minutes, .hours): this
node's dynamic value (DYNAMIC_BROKER_CONFIG), the cluster-wide dynamic default
(DYNAMIC_DEFAULT_BROKER_CONFIG), server.properties/--override (STATIC_BROKER_CONFIG), else the
built-in default (DEFAULT_CONFIG).  A broker key has the same broker layers.  Synonyms (v1+) list
that chain, as Kafka does, so tools such as kafka-configs can show where a value came from.

A broker key that may hold a secret (pyk.config.maybe_sensitive: a PASSWORD key such as
ssl.key.password or sasl.jaas.config, a listener override of one, or a key of unknown type) is
answered as Kafka's ConfigHelper does: is_sensitive, with a null value in the entry and in each
of its synonyms, so no client, `pyk configs` or console page ever sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyk.config import DYNAMIC_KEYS, KEYS, ServerConfig, config_type, maybe_sensitive
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import TOPIC_CONFIGS
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.metadata_store import check_topic_name
from pyk.server.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 4

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8


def require_config_access(ctx: RequestContext, services: ShardServices, operation: AclOperation,
                          resource: dict[str, Any]) -> None:
    """DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic of a TOPIC resource, on the cluster for a
    BROKER or BROKER_LOGGER one (Kafka's rule)."""
    if resource["resource_type"] == TOPIC:
        services.require(ctx, operation, ResourceType.TOPIC, resource["resource_name"])
    else:
        services.require(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME)
# ConfigSource values of DescribeConfigsResponse v1+
DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = (
    1, 2, 3, 4, 5)
# ConfigType values (v3+)
_CONFIG_TYPES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6, "list": 7, "class": 8, "password": 9}


def _entry(name: str, value: str | None, source: int, synonyms: list[dict[str, Any]], type_name: str | None,
           doc: str | None, read_only: bool, sensitive: bool = False) -> dict[str, Any]:
    """One DescribeConfigs entry; a sensitive one carries no value, in itself or its synonyms.
    `type_name` None: a key of unknown type (ConfigType UNKNOWN, 0)."""
    if sensitive:
        value = None
        synonyms = [{**s, "value": None} for s in synonyms]
    return {"name": name, "value": value, "read_only": read_only, "is_default": source == DEFAULT_CONFIG,
            "config_source": source, "is_sensitive": sensitive, "synonyms": synonyms,
            "config_type": _CONFIG_TYPES.get(type_name, 2) if type_name else 0, "documentation": doc}


def _broker_synonyms(config: ServerConfig, names: Sequence[str]) -> list[dict[str, Any]]:
    """The broker layers holding any of `names`, in Kafka's order (ConfigHelper.configSynonyms):
    layer by layer from the most specific, and within a layer the names in priority order."""
    layers = ((config.dynamic_broker, DYNAMIC_BROKER_CONFIG), (config.dynamic_default, DYNAMIC_DEFAULT_BROKER_CONFIG),
              (config.raw, STATIC_BROKER_CONFIG))
    out = [{"name": n, "value": layer[n], "source": source} for layer, source in layers for n in names if n in layer]
    out += [{"name": n, "value": KEYS[n].default, "source": DEFAULT_CONFIG}
            for n in names if n in KEYS and KEYS[n].default is not None]
    return out


def _from_own(chain: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Kafka drops a group's entries before the first one of `name` itself (ConfigHelper's
    `dropWhile(name != key)`): so retention.ms lists log.retention.hours=168 only under a
    log.retention.ms value, and segment.ms, segment.jitter.ms and flush.ms, whose first broker
    key has no default, list no broker synonym at all until one is set."""
    own = next((i for i, s in enumerate(chain) if s["name"] == name), len(chain))
    return chain[own:]


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
        brokers = _broker_synonyms(services.config, spec.server_keys)
        if spec.server_key and len(spec.server_keys) == 1 and not brokers:
            # A server key pyk does not have (log.message.timestamp.after.max.ms): Kafka's default
            # stands for it.  A key with fallbacks (log.roll.jitter.ms) has none in Kafka.
            brokers.append({"name": spec.server_key, "value": spec.kafka_default, "source": DEFAULT_CONFIG})
        # As for broker keys, Kafka lists the broker layers from the primary key's own value on:
        # retention.ms has no broker synonym unless log.retention.ms itself is set.
        chain += _from_own(brokers, spec.server_key) if spec.server_key else brokers
        source = chain[0]["source"] if chain else DEFAULT_CONFIG
        entries.append(_entry(name, effective.value_string(name), source, chain if with_synonyms else [],
                              spec.type_name, spec.doc if with_docs else None, read_only=False))
    return entries


# Broker keys that stand for one topic key (log.retention.ms, .minutes, .hours): Kafka lists the
# whole group as synonyms of each (DynamicBrokerConfig.brokerConfigSynonyms).
_SYNONYM_GROUPS = {n: spec.server_keys for spec in TOPIC_CONFIGS.values() for n in spec.server_keys}


def _synonym_group(name: str) -> Sequence[str]:
    """The broker keys `name` lists as synonyms (Kafka's DynamicBrokerConfig.brokerConfigSynonyms):
    its topic key group; a listener override and the key it overrides; else itself alone."""
    if name.startswith("listener.name."):
        return name, name[len("listener.name."):].partition(".")[2]
    return _SYNONYM_GROUPS.get(name, (name,))


def _broker_entries(services: ShardServices, keys: list[str] | None, with_synonyms: bool, with_docs: bool,
                    cluster_default: bool) -> list[dict[str, Any]]:
    """One node's configuration; or with `cluster_default` (resource name ""), as Kafka's
    ConfigHelper answers it, only the cluster-wide dynamic values, each with its synonyms of that
    layer alone."""
    config: ServerConfig = services.config
    # Keys pyk does not define are described after the known ones, as Kafka describes every key it
    # was given: listener overrides and unknown keys of server.properties, custom keys set dynamically.
    custom = sorted({*config.raw, *config.dynamic_default, *config.dynamic_broker} - KEYS.keys())
    names = [n for n in [*KEYS, *custom] if not cluster_default or n in config.dynamic_default]
    entries = []
    for name in names:
        if keys is not None and name not in keys:
            continue
        # A key's source is where its own value comes from, not another of its group.
        chain = _from_own(_broker_synonyms(config, _synonym_group(name)), name)
        if cluster_default:
            chain = [s for s in chain if s["source"] == DYNAMIC_DEFAULT_BROKER_CONFIG]
        source = chain[0]["source"] if chain else DEFAULT_CONFIG
        key = KEYS.get(name)
        value = config.dynamic_default[name] if cluster_default else config.text_of(name)
        entries.append(_entry(name, value, source, chain if with_synonyms else [], config_type(name),
                              key.doc if key and with_docs else None,
                              read_only=name not in DYNAMIC_KEYS and key is not None, sensitive=maybe_sensitive(name)))
    return entries


def _describe(services: ShardServices, resource: dict[str, Any], with_synonyms: bool, with_docs: bool) -> list[dict[str, Any]]:
    rtype, rname = resource["resource_type"], resource["resource_name"]
    keys = resource.get("configuration_keys")
    if rtype == TOPIC:
        check_topic_name(rname)
        info = services.metadata.get(rname)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {rname!r} does not exist")
        return topic_config_entries(services, info, keys, with_synonyms, with_docs)
    if rtype == BROKER:
        if rname not in ("", str(services.node_id)):
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"this is broker {services.node_id}, not {rname!r}")
        return _broker_entries(services, keys, with_synonyms, with_docs, cluster_default=rname == "")
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"resource type {rtype} is not supported (2 topic, 4 broker)")


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    version = ctx.header.api_version
    with_synonyms = version >= 1 and request.get("include_synonyms", False)
    with_docs = version >= 3 and request.get("include_documentation", False)
    results = []
    for resource in request["resources"]:
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": "",  # Kafka's: "", not null
                                 "resource_type": resource["resource_type"], "resource_name": resource["resource_name"],
                                 "configs": []}
        try:
            require_config_access(ctx, services, AclOperation.DESCRIBE_CONFIGS, resource)
            entry["configs"] = _describe(services, resource, with_synonyms, with_docs)
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"describe configs of {resource['resource_name']}")
        results.append(entry)
    return {"throttle_time_ms": 0, "results": results}
