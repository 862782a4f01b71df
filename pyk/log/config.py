"""LogConfig: the topic-level settings of a partition log, under Kafka's topic key names.

Owns the table of topic configs (`TOPIC_CONFIGS`): for each key its Kafka type, the server key
it takes its default from (Kafka's ServerTopicConfigSynonyms: `segment.bytes` <- `log.segment.bytes`
...), Kafka's own default when the server does not say, a parser that validates a string value,
and a one-line doc.  CreateTopics / DescribeConfigs / AlterConfigs use the table to validate and
describe topic configs; the log uses the typed attributes of a `LogConfig`.

A `LogConfig` is immutable.  It is built from the server config once (`from_server`), and every
topic with overrides gets its own instance (`with_overrides`); changing a topic's config means
building a new instance and handing it to `LogManager.update_config`.  Invalid overrides raise
`KafkaError(INVALID_CONFIG)` naming the key, the value and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyk.configdef import (
    INT_MAX,
    LONG_MAX,
    double_range,
    int_range,
    kafka_version,
    one_of,
    parse_bool,
    throttled_replicas,
)
from pyk.errors import ErrorCode, KafkaError

# Codec names of `compression.type` and their codec ids in the batch attributes (the ids
# pyk._native.recompress_batch takes).  `producer` keeps whatever the client sent.
CODECS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COMPRESSION_TYPES = ("producer", *CODECS)

# Decompression bound of a produced batch's records when the server config does not set
# message.decompressed.max.bytes: socket.request.max.bytes' default, so that compression never
# lets a client make the broker hold more for one batch than an uncompressed request may carry.
DEFAULT_MAX_DECOMPRESSED_BYTES = 104_857_600

CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"


# Parsers: each takes the string form (as AlterConfigs sends it) and returns the typed value or
# raises ValueError with "expected ..., found ..." text.


# cleanup.policy is a set in Kafka; a sorted tuple keeps it hashable and comparable.
def _cleanup_policy(text: str) -> tuple[str, ...]:
    # A list type in Kafka: "delete", "compact" or both, comma separated, order irrelevant.
    items = tuple(sorted({s.strip() for s in text.split(",") if s.strip()}))
    if not items or any(i not in ("compact", "delete") for i in items):
        raise ValueError(f"expected a list of compact and/or delete, found {text!r}")
    return items


@dataclass(frozen=True)
class TopicConfigKey:
    """One topic-level key: how it is typed, validated, defaulted and described."""

    name: str  # Kafka topic config name (TopicConfig.java)
    type_name: str  # Kafka ConfigDef type as DescribeConfigs v3+ reports it: int, long, ...
    parse: Callable[[str], Any]  # string -> typed value, ValueError when invalid
    kafka_default: str  # Kafka's default when no server key supplies one
    server_keys: tuple[str, ...]  # server synonyms, most specific first (e.g. log.retention.ms, .minutes, .hours)
    doc: str

    def render(self, value: Any) -> str:
        """The string form of a typed value, as DescribeConfigs reports it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return ",".join(value)
        return str(value)

    @property
    def server_key(self) -> str | None:
        """The server key this topic key defaults from (the first synonym), if any."""
        return self.server_keys[0] if self.server_keys else None


def _key(name: str, type_name: str, parse: Callable[[str], Any], default: str,
         server_keys: tuple[str, ...], doc: str) -> TopicConfigKey:
    return TopicConfigKey(name, type_name, parse, default, server_keys, doc)


# The topic keys pyk accepts, in DescribeConfigs order.  Ranges are Kafka's ConfigDef validators
# (LogConfig.java / TopicConfig.java): e.g. segment.bytes >= 14 (one legacy record overhead),
# segment.index.bytes >= 4, min.insync.replicas >= 1, retention.* may be -1 for "unbounded".
# Server synonyms follow ServerTopicConfigSynonyms, most specific first; hour/minute synonyms
# are converted to milliseconds by _from_server_value.  Keys listed here but not acted on yet
# (compaction, retention, jitter, unclean election) are still validated and described, so
# clients that set them get Kafka's answers.
TOPIC_CONFIGS: dict[str, TopicConfigKey] = {
    k.name: k
    for k in [
        _key("segment.bytes", "int", int_range(14, INT_MAX), "1073741824", ("log.segment.bytes",),
             "Size of a segment file before the log rolls to a new one."),
        _key("segment.ms", "long", int_range(1, LONG_MAX), "604800000", ("log.roll.ms", "log.roll.hours"),
             "Age of a segment (by its first batch's timestamp) after which the log rolls."),
        _key("segment.jitter.ms", "long", int_range(0, LONG_MAX), "0", ("log.roll.jitter.ms", "log.roll.jitter.hours"),
             "Accepted for compatibility; pyk applies no roll jitter."),
        _key("segment.index.bytes", "int", int_range(4, INT_MAX), "10485760", ("log.index.size.max.bytes",),
             "Size of the offset index (and capacity of the time index) of a segment."),
        _key("index.interval.bytes", "int", int_range(0, INT_MAX), "4096", ("log.index.interval.bytes",),
             "Bytes of batches between two sparse index entries."),
        _key("max.message.bytes", "int", int_range(0, INT_MAX), "1048588", ("message.max.bytes",),
             "Largest record batch (after compression) the log accepts."),
        _key("message.timestamp.type", "string", one_of(CREATE_TIME, LOG_APPEND_TIME), CREATE_TIME,
             ("log.message.timestamp.type",),
             "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's clock."),
        _key("message.timestamp.difference.max.ms", "long", int_range(0, LONG_MAX), str(LONG_MAX),
             ("log.message.timestamp.difference.max.ms",),
             "Largest distance between a CreateTime timestamp and the broker clock."),
        _key("message.timestamp.before.max.ms", "long", int_range(0, LONG_MAX), str(LONG_MAX),
             ("log.message.timestamp.before.max.ms",),
             "How far in the past a CreateTime timestamp may be."),
        _key("message.timestamp.after.max.ms", "long", int_range(0, LONG_MAX), "3600000",
             ("log.message.timestamp.after.max.ms",),
             "How far in the future a CreateTime timestamp may be (one hour since Kafka 4.0, KIP-1030)."),
        _key("compression.type", "string", one_of(*COMPRESSION_TYPES), "producer", ("compression.type",),
             "Codec of stored batches; producer keeps the client's codec."),
        _key("flush.messages", "long", int_range(1, LONG_MAX), str(LONG_MAX), ("log.flush.interval.messages",),
             "Messages appended between forced fdatasyncs."),
        _key("segment.writeback.bytes", "long", int_range(0, LONG_MAX), "4194304", ("log.segment.writeback.bytes",),
             "pyk: appended bytes of a segment after which the kernel's writeback of them starts "
             "(asynchronous sync_file_range; no durability promise), so dirty data never piles up "
             "into a flush that stalls writers; 0 leaves writeback to the kernel's thresholds."),
        _key("flush.ms", "long", int_range(0, LONG_MAX), str(LONG_MAX),
             ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
             "Longest time appended data stays unflushed (checked by the flush timer)."),
        _key("retention.ms", "long", int_range(-1, LONG_MAX), "604800000",
             ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
             "How long segments are kept (-1: forever)."),
        _key("retention.bytes", "long", int_range(-1, LONG_MAX), "-1", ("log.retention.bytes",),
             "Size kept per partition before old segments are deleted (-1: unbounded)."),
        _key("cleanup.policy", "list", _cleanup_policy, "delete", ("log.cleanup.policy",),
             "delete (retention) and/or compact (key compaction)."),
        _key("delete.retention.ms", "long", int_range(0, LONG_MAX), "86400000", ("log.cleaner.delete.retention.ms",),
             "How long tombstones survive compaction."),
        _key("min.compaction.lag.ms", "long", int_range(0, LONG_MAX), "0", ("log.cleaner.min.compaction.lag.ms",),
             "Minimum age of a message before it may be compacted."),
        _key("max.compaction.lag.ms", "long", int_range(1, LONG_MAX), str(LONG_MAX),
             ("log.cleaner.max.compaction.lag.ms",),
             "Maximum time a message stays uncompacted."),
        _key("min.cleanable.dirty.ratio", "double", double_range(0.0, 1.0), "0.5",
             ("log.cleaner.min.cleanable.ratio",),
             "Dirty share of a log above which it is compacted."),
        _key("file.delete.delay.ms", "long", int_range(0, LONG_MAX), "60000", ("log.segment.delete.delay.ms",),
             "Delay between removing a segment from the log and closing/deleting its files."),
        _key("min.insync.replicas", "int", int_range(1, INT_MAX), "1", ("min.insync.replicas",),
             "Replicas that must have a write for acks=all to succeed."),
        _key("unclean.leader.election.enable", "boolean", parse_bool, "false", ("unclean.leader.election.enable",),
             "Allow an out-of-sync replica to become leader."),
        _key("preallocate", "boolean", parse_bool, "false", ("log.preallocate",),
             "Preallocate a new segment's .log file to segment.bytes."),
        _key("leader.replication.throttled.replicas", "list", throttled_replicas, "", (),
             "Replicas (partition:node, or *) whose replication the leader throttles to "
             "leader.replication.throttled.rate while they are out of sync (reassignments)."),
        _key("follower.replication.throttled.replicas", "list", throttled_replicas, "", (),
             "Replicas (partition:node, or *) whose follower throttles its fetches to "
             "follower.replication.throttled.rate while not caught up (reassignments)."),
        # Removed in Kafka 4.0 (see pyk.configdef.REMOVED_IN_KAFKA_4): validated and described as
        # Kafka 3.x did (its default 3.0-IV1 / true), acted on by nothing.
        _key("message.format.version", "string", kafka_version, "3.0-IV1", ("log.message.format.version",),
             "Removed in Kafka 4.0: accepted and ignored (every batch pyk writes is format v2)."),
        _key("message.downconversion.enable", "boolean", parse_bool, "true", ("log.message.downconversion.enable",),
             "Removed in Kafka 4.0: accepted and ignored (pyk never down-converts fetches)."),
    ]
}


def _from_server_value(key: TopicConfigKey, server: Mapping[str, object]) -> Any:
    """The typed default of a topic key from the server config, following Kafka's synonym order.

    Hour/minute synonyms are scaled to milliseconds (log.retention.hours=168 -> 604800000).  A
    server key that is absent or None falls through to the next synonym, then to Kafka's default.
    """
    # Kafka resolves e.g. retention.ms from log.retention.ms, then .minutes, then .hours: the
    # first synonym that is set wins, so an explicit smaller unit always overrides a larger one.
    for server_key in key.server_keys:
        value = server.get(server_key)
        if value is None:
            continue
        if server_key.endswith(".hours"):
            value = int(value) * 3_600_000  # type: ignore[call-overload]
        elif server_key.endswith(".minutes"):
            value = int(value) * 60_000  # type: ignore[call-overload]
        # Server values are already typed; render+parse normalises them (lists, bools, ranges)
        # and rejects a server value that would be invalid at topic level.
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        return key.parse(key.render(value))
    return key.parse(key.kafka_default)


class LogConfig(Mapping[str, Any]):
    """Typed topic settings of one log: a read-only mapping of Kafka topic key -> value.

    Immutable and shared: one instance serves every partition of a topic (and the server-wide
    defaults instance serves every topic without overrides).  `overrides` holds the string values
    set at topic level, which DescribeConfigs reports as DYNAMIC_TOPIC_CONFIG; every other key is
    a default taken from the server config.  Hot-path settings are plain attributes.
    """

    __slots__ = ("_defaults", "_values", "overrides", "segment_bytes", "segment_ms", "segment_index_bytes",
                 "index_interval_bytes", "max_message_bytes", "message_timestamp_type", "log_append_time",
                 "compression_type", "target_codec", "flush_messages", "writeback_bytes", "flush_ms", "retention_ms",
                 "retention_bytes", "cleanup_policy", "compact", "delete_retention_ms", "min_compaction_lag_ms",
                 "max_compaction_lag_ms", "min_cleanable_dirty_ratio", "roll_ms", "file_delete_delay_ms",
                 "min_insync_replicas", "preallocate", "timestamp_before_max_ms", "timestamp_after_max_ms",
                 "max_decompressed_bytes")

    def __init__(self, defaults: Mapping[str, Any] | None = None, overrides: Mapping[str, str] | None = None,
                 max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> None:
        # Layering, lowest first: Kafka's defaults, the server-derived defaults, topic overrides.
        # Only the override strings are kept verbatim (DescribeConfigs echoes what was set).
        base = {name: key.parse(key.kafka_default) for name, key in TOPIC_CONFIGS.items()}
        if defaults is not None:
            base.update(defaults)
        self._defaults = dict(base)
        values = dict(base)
        self.overrides: dict[str, str] = {}
        for name, text in (overrides or {}).items():
            key = TOPIC_CONFIGS.get(name)
            if key is None:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"unknown topic config {name!r}")
            if text is None:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"topic config {name} needs a value, found null")
            try:
                values[name] = key.parse(str(text))
            except ValueError as exc:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"invalid value {text!r} for {name}: {exc}") from None
            self.overrides[name] = str(text).strip()
        self._values = values
        # Typed attributes for the append/read paths: one attribute load instead of a dict
        # lookup plus key string per use.
        self.segment_bytes: int = values["segment.bytes"]
        self.segment_ms: int = values["segment.ms"]
        self.segment_index_bytes: int = values["segment.index.bytes"]
        self.index_interval_bytes: int = values["index.interval.bytes"]
        self.max_message_bytes: int = values["max.message.bytes"]
        self.message_timestamp_type: str = values["message.timestamp.type"]
        self.log_append_time: bool = self.message_timestamp_type == LOG_APPEND_TIME
        self.compression_type: str = values["compression.type"]
        # Codec id to store batches in, or None to keep the producer's (compression.type=producer).
        self.target_codec: int | None = CODECS.get(self.compression_type)
        self.flush_messages: int = values["flush.messages"]
        self.writeback_bytes: int = values["segment.writeback.bytes"]
        self.flush_ms: int = values["flush.ms"]
        self.retention_ms: int = values["retention.ms"]
        self.retention_bytes: int = values["retention.bytes"]
        self.cleanup_policy: tuple[str, ...] = values["cleanup.policy"]
        self.compact: bool = "compact" in self.cleanup_policy
        self.delete_retention_ms: int = values["delete.retention.ms"]
        self.min_compaction_lag_ms: int = values["min.compaction.lag.ms"]
        self.max_compaction_lag_ms: int = values["max.compaction.lag.ms"]
        self.min_cleanable_dirty_ratio: float = values["min.cleanable.dirty.ratio"]
        # Age at which the active segment rolls: segment.ms, and for compacted logs no later
        # than max.compaction.lag.ms, since the cleaner never touches the active segment
        # (KIP-354: Kafka's UnifiedLog rolls on min(segment.ms, max.compaction.lag.ms)).
        self.roll_ms: int = min(self.segment_ms, self.max_compaction_lag_ms) if self.compact else self.segment_ms
        self.file_delete_delay_ms: int = values["file.delete.delay.ms"]
        self.min_insync_replicas: int = values["min.insync.replicas"]
        self.preallocate: bool = values["preallocate"]
        # KIP-937 bounds, with the older difference.max.ms as a cap on both sides.
        # (Kafka 3.6+ semantics: the newer before/after keys default to the older difference key.)
        diff = values["message.timestamp.difference.max.ms"]
        self.timestamp_before_max_ms: int = min(diff, values["message.timestamp.before.max.ms"])
        self.timestamp_after_max_ms: int = min(diff, values["message.timestamp.after.max.ms"])
        # Broker-wide, not a topic key (Kafka has no such limit, so nothing to describe per
        # topic): how far LogValidator lets a produced batch's records decompress.
        self.max_decompressed_bytes: int = max_decompressed_bytes

    @classmethod
    def from_server(cls, server: Mapping[str, object]) -> LogConfig:
        """Defaults for every topic from the server config (Kafka server key names -> typed values).

        Each topic key takes the first server synonym that is set (retention.ms: log.retention.ms,
        else log.retention.minutes, else log.retention.hours), else Kafka's default.  A server
        value that is invalid at topic level raises KafkaError(INVALID_CONFIG).  The decompression
        bound is message.decompressed.max.bytes, else socket.request.max.bytes.
        """
        defaults = {}
        for name, key in TOPIC_CONFIGS.items():
            try:
                defaults[name] = _from_server_value(key, server)
            except ValueError as exc:
                raise KafkaError(ErrorCode.INVALID_CONFIG,
                                 f"server default for {name} ({', '.join(key.server_keys)}) is invalid: {exc}") from None
        bound = server.get("message.decompressed.max.bytes") or server.get("socket.request.max.bytes")
        return cls(defaults, None, int(bound) if bound else DEFAULT_MAX_DECOMPRESSED_BYTES)  # type: ignore[call-overload]

    def with_overrides(self, overrides: Mapping[str, str]) -> LogConfig:
        """A new config: these topic-level string values on top of this one's overrides.

        Unknown keys and invalid values raise KafkaError(INVALID_CONFIG).  To replace the override
        set instead of merging (AlterConfigs), call `self.defaults().with_overrides(full_set)`.
        """
        merged = {**self.overrides, **overrides}
        return LogConfig(self._defaults, merged, self.max_decompressed_bytes)

    def defaults(self) -> LogConfig:
        """The same server defaults with no topic overrides."""
        return LogConfig(self._defaults, None, self.max_decompressed_bytes)

    def value_string(self, name: str) -> str:
        """The value of a key rendered as DescribeConfigs reports it."""
        return TOPIC_CONFIGS[name].render(self._values[name])

    def describe(self) -> Iterator[tuple[str, str, bool]]:
        """(name, value string, set at topic level) for every key, in table order."""
        for name in TOPIC_CONFIGS:
            yield name, self.value_string(name), name in self.overrides

    # Mapping protocol ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LogConfig) and self._values == other._values and self.overrides == other.overrides
                and self.max_decompressed_bytes == other.max_decompressed_bytes)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.overrides.items())))

    def __repr__(self) -> str:
        return f"LogConfig(overrides={self.overrides!r})"
