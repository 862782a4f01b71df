"""Broker configuration: Kafka's `server.properties` keys, their defaults and their validation.

A `ServerConfig` is built once at start-up from a properties file plus `--override key=value`
pairs, in that order of precedence.  Keys and defaults are Kafka's (`KafkaConfig`), so an
existing `server.properties` works unchanged; keys pyk does not know are reported as warnings
(they may belong to a feature pyk does not have yet), while a known key with a bad value stops
start-up with a message naming the key, the value and what was expected.

Dynamic broker configs (KIP-226): the keys of `DYNAMIC_KEYS` may also be set at run time through
AlterConfigs / IncrementalAlterConfigs on a BROKER resource, for one node or as the cluster-wide
default.  Those layers are stored in the cluster metadata; `ServerConfig.with_dynamic` puts them
on top of the static settings (per-node over cluster default over static over built-in default).

Topic-level settings (segment.bytes, retention.ms, ...) are derived from these server keys by
`pyk.log.config.LogConfig.from_server`; this module only knows server keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pyk.configdef import (
    INT_MAX,
    LONG_MAX,
    double_range,
    int_range,
    kafka_version,
    one_of,
    parse_bool,
    warn_removed,
)

log = logging.getLogger("pyk.config")

# Kafka's security protocols (SecurityProtocol.java), all served (pyk.server.security).
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# SASL mechanisms pyk serves (GSSAPI with python-gssapi, the `kerberos` extra).
SASL_MECHANISMS = ("GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# Keys a `listener.name.<listener>.` prefix may scope to one listener (Kafka's listener-prefixed
# configs); a SASL key may carry a mechanism too: listener.name.sasl_ssl.plain.sasl.jaas.config.
LISTENER_SCOPED_PREFIXES = ("ssl.", "sasl.", "connections.max.reauth.ms")
# replica.selector.class: the one selector pyk has, under Kafka's class name (KIP-392).
RACK_AWARE_REPLICA_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

# `authorizer.class.name` values that turn pyk's ACL authorizer on: Kafka's built-in ones (ZooKeeper
# era and KRaft), so an existing server.properties keeps its meaning.
AUTHORIZER_CLASSES = ("kafka.security.authorizer.AclAuthorizer",
                      "org.apache.kafka.metadata.authorizer.StandardAuthorizer")


class ConfigError(ValueError):
    """A configuration value that cannot be used: start-up stops with this message."""


@dataclass(frozen=True)
class Listener:
    """One `listeners` entry: a named endpoint the broker accepts connections on."""

    name: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.name}://{self.host}:{self.port}"


# Kafka's listener form (EndPoint.scala): a name of letters, digits and '_', then host (IPv6 in
# brackets) and port.  Not urlsplit: a URL scheme may not contain '_' (SASL_PLAINTEXT).
_LISTENER = re.compile(r"^([A-Za-z0-9_]+)://(\[[0-9A-Fa-f:.%]*\]|[^:/\[\]]*)(?::(\d*))?$")


def parse_listeners(value: str) -> list[Listener]:
    """Parses `NAME://host:port[,NAME://host:port]`; an empty host means all interfaces."""
    out = []
    for item in (s.strip() for s in value.split(",")):
        if not item:
            continue
        match = _LISTENER.match(item)
        if match is None:
            raise ValueError(f"expected NAME://host:port, found {item!r}")
        name, host, port = match.groups()
        if port is None:
            raise ValueError(f"missing port in {item!r}")
        if not port or int(port) > 65535:
            raise ValueError(f"bad port in {item!r}")
        out.append(Listener(name.upper(), host.strip("[]"), int(port)))
    if not out:
        raise ValueError("at least one listener is required")
    return out


def _protocol_map(text: str) -> dict[str, str]:
    """listener.security.protocol.map: `NAME:PROTOCOL[,NAME:PROTOCOL]`."""
    out = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, sep, protocol = item.partition(":")
        protocol = protocol.strip().upper()
        if not sep or not name.strip() or protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"expected NAME:PROTOCOL with PROTOCOL one of {', '.join(SECURITY_PROTOCOLS)}, "
                             f"found {item!r}")
        out[name.strip().upper()] = protocol
    return out


def _str(text: str) -> str:
    return text.strip()


def _list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _super_users(text: str) -> list[str]:
    """Kafka's `super.users` form: principals separated by semicolons (a DN may hold commas)."""
    return [p.strip() for p in text.split(";") if p.strip()]


def _host_port(text: str) -> str:
    """`host:port` (an empty host: all interfaces), or empty for off."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if text and (not sep or not port.isdigit() or int(port) > 65535):
        raise ValueError(f"expected host:port or an empty value, found {text!r}")
    return text


def _ip_overrides(text: str) -> dict[str, int]:
    """`host:count,...` (Kafka's max.connections.per.ip.overrides; `[v6]:count` or a bare v6 address
    before its last colon) as {host: count}."""
    out: dict[str, int] = {}
    for item in _list(text):
        host, sep, count = item.rpartition(":")
        if not sep or not host or not count.isdigit():
            raise ValueError(f"expected host:count, found {item!r}")
        out[host.strip("[]")] = int(count)
    return out


def _listeners(text: str) -> list[Listener]:
    return parse_listeners(text)


def _metrics_listener(text: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` (`[v6]:port`; no host: every interface); None when empty (off)."""
    value = text.strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port or nothing, found {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class Key:
    """One known server key: how to parse it, its default (None: unset) and what it is for."""

    name: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    type_name: str = "string"  # Kafka's ConfigDef type; "password" marks a secret (see maybe_sensitive)


def _k(name: str, parse: Callable[[str], Any], default: str | None, doc: str, type_name: str) -> Key:
    return Key(name, parse, default, doc, type_name)


_POS_INT = int_range(1, INT_MAX)
_NONNEG_INT = int_range(0, INT_MAX)
_POS_LONG = int_range(1, LONG_MAX)
_NONNEG_LONG = int_range(0, LONG_MAX)
_ANY_LONG = int_range(-1, LONG_MAX)
_CODECS = ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")

KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        _k("listeners", _listeners, "PLAINTEXT://127.0.0.1:9092", "Endpoints to accept connections on.", "list"),
        _k("advertised.listeners", _listeners, None, "Endpoints given to clients in Metadata (default: listeners).", "list"),
        _k("listener.security.protocol.map", _protocol_map, ",".join(f"{p}:{p}" for p in SECURITY_PROTOCOLS),
           "Security protocol of each listener name.", "string"),
        _k("node.id", int_range(0, INT_MAX), "1", "This broker's id in Metadata.", "int"),
        _k("broker.id", int_range(-1, INT_MAX), "-1", "Alias of node.id (ZooKeeper-mode name); -1 = use node.id.", "int"),
        _k("cluster.id", _str, None, "Cluster id; generated and kept in meta.properties when unset.", "string"),
        _k("log.dirs", _list, None, "Directories holding partition logs (default: log.dir).", "list"),
        _k("log.dir", _list, "/tmp/kafka-logs", "Log directory used when log.dirs is unset.", "string"),
        _k("num.partitions", _POS_INT, "1", "Partitions of an auto-created or default topic.", "int"),
        _k("default.replication.factor", _POS_INT, "1", "Replication factor of auto-created topics.", "int"),
        _k("auto.create.topics.enable", parse_bool, "true", "Create unknown topics on Metadata requests.", "boolean"),
        _k("delete.topic.enable", parse_bool, "true", "Allow DeleteTopics.", "boolean"),
        _k("log.segment.bytes", int_range(14, INT_MAX), "1073741824", "Segment size before a roll.", "int"),
        _k("log.roll.ms", _POS_LONG, None, "Segment age before a roll (default: log.roll.hours).", "long"),
        _k("log.roll.hours", _POS_INT, "168", "Segment age before a roll, in hours.", "int"),
        _k("log.roll.jitter.ms", _NONNEG_LONG, None, "Largest random jitter subtracted from a segment's roll age "
           "(default: log.roll.jitter.hours).", "long"),
        _k("log.roll.jitter.hours", _NONNEG_INT, "0", "Largest roll jitter, in hours.", "int"),
        _k("log.index.size.max.bytes", int_range(4, INT_MAX), "10485760", "Size of an offset index file.", "int"),
        _k("log.index.interval.bytes", _NONNEG_INT, "4096", "Bytes between offset index entries.", "int"),
        _k("log.retention.ms", _ANY_LONG, None, "Time to keep a segment after its newest record (-1: forever).", "long"),
        _k("log.retention.minutes", _ANY_LONG, None, "Retention in minutes when log.retention.ms is unset.", "int"),
        _k("log.retention.hours", _ANY_LONG, "168", "Retention in hours when the two above are unset.", "int"),
        _k("log.retention.bytes", _ANY_LONG, "-1", "Bytes to keep per partition; older whole segments go (-1: unbounded).", "long"),
        _k("log.retention.check.interval.ms", _POS_LONG, "300000", "How often the retention pass runs over every log.", "long"),
        _k("log.segment.delete.delay.ms", _NONNEG_LONG, "60000", "Delay between renaming a deleted segment to .deleted and removing it.", "long"),
        _k("log.cleanup.policy", one_of("delete", "compact", "compact,delete", "delete,compact"), "delete",
           "Default cleanup.policy of topics.", "list"),
        _k("log.cleaner.delete.retention.ms", _NONNEG_LONG, "86400000", "How long tombstones survive cleaning.", "long"),
        _k("log.cleaner.enable", parse_bool, "true", "Run the log cleaner (compaction of cleanup.policy=compact topics).",
           "boolean"),
        _k("log.cleaner.threads", _POS_INT, "1", "Cleaner threads per shard.", "int"),
        _k("log.cleaner.dedupe.buffer.size", int_range(32, LONG_MAX), "134217728",
           "Memory of the cleaners' key -> offset maps per shard (split between its threads).", "long"),
        _k("log.cleaner.io.buffer.size", _POS_INT, "524288",
           "Bytes a cleaner thread reads from a segment at a time.", "int"),
        _k("log.cleaner.io.buffer.load.factor", double_range(0.01, 1.0), "0.9",
           "Share of the offset map's slots that may be filled before a pass stops early.", "double"),
        _k("log.cleaner.backoff.ms", _NONNEG_LONG, "15000", "Sleep of a cleaner thread that found nothing to clean.",
           "long"),
        _k("log.cleaner.min.cleanable.ratio", double_range(0.0, 1.0), "0.5",
           "Default min.cleanable.dirty.ratio of topics.", "double"),
        _k("log.cleaner.min.compaction.lag.ms", _NONNEG_LONG, "0", "Default min.compaction.lag.ms of topics.", "long"),
        _k("log.cleaner.max.compaction.lag.ms", _POS_LONG, str(LONG_MAX), "Default max.compaction.lag.ms of topics.",
           "long"),
        _k("log.flush.interval.messages", _POS_LONG, str(LONG_MAX), "Messages appended between forced fsyncs.", "long"),
        _k("log.segment.writeback.bytes", _NONNEG_LONG, "4194304",
           "pyk: start the kernel's writeback of a segment every this many appended bytes (0: the kernel's thresholds).",
           "long"),
        _k("log.flush.interval.ms", _NONNEG_LONG, None, "Max time data stays unflushed (default: the scheduler interval).", "long"),
        _k("log.flush.scheduler.interval.ms", _NONNEG_LONG, str(LONG_MAX), "How often the flusher checks logs.", "long"),
        _k("log.flush.offset.checkpoint.interval.ms", _POS_INT, "60000", "How often recovery points are written.", "int"),
        _k("log.flush.start.offset.checkpoint.interval.ms", _POS_INT, "60000", "How often log start offsets are written.", "int"),
        _k("log.message.timestamp.type", one_of("CreateTime", "LogAppendTime"), "CreateTime",
           "Whether the broker keeps producer timestamps or stamps its own.", "string"),
        # Kafka 4.0 bounds future timestamps by an hour by default (KIP-1030), the past not at all.
        _k("log.message.timestamp.before.max.ms", _NONNEG_LONG, str(LONG_MAX),
           "How far before the broker's clock a record's CreateTime may be.", "long"),
        _k("log.message.timestamp.after.max.ms", _NONNEG_LONG, "3600000",
           "How far after the broker's clock a record's CreateTime may be.", "long"),
        _k("log.preallocate", parse_bool, "false", "Preallocate segment files.", "boolean"),
        _k("log.message.format.version", kafka_version, "3.0-IV1",
           "Removed in Kafka 4.0: accepted and ignored (every batch pyk writes is format v2).", "string"),
        _k("log.message.downconversion.enable", parse_bool, "true",
           "Removed in Kafka 4.0: accepted and ignored (pyk never down-converts fetches).", "boolean"),
        _k("compression.type", one_of(*_CODECS), "producer", "Codec stored on disk; producer keeps the client's.", "string"),
        _k("message.max.bytes", int_range(0, INT_MAX), "1048588", "Largest record batch accepted.", "int"),
        _k("message.decompressed.max.bytes", _POS_LONG, None,
           "pyk: largest decompressed records section of a produced batch; a batch that expands past it "
           "is refused with CORRUPT_MESSAGE (default: socket.request.max.bytes).", "long"),
        _k("min.insync.replicas", _POS_INT, "1", "Replicas that must have a write for acks=all.", "int"),
        _k("num.shards", _POS_INT, None, "Worker processes, each pinned to a core and owning a group of partitions "
           "(default: the number of usable cores).", "int"),
        _k("num.network.threads", _POS_INT, "3", "Network threads (pyk: connections are served by the event loop).", "int"),
        _k("num.io.threads", _POS_INT, "8", "Request handler threads (pyk: requests run on the event loop).", "int"),
        _k("num.recovery.threads.per.data.dir", _POS_INT, "2", "Threads for log recovery at start-up.", "int"),
        _k("io.engine", one_of("auto", "io_uring", "epoll"), "auto",
           "How shards write to sockets and sync group commits: io_uring (liburing), epoll (sendmsg/sendfile), "
           "or auto (the faster where it works; see docs/tuning.md).", "string"),
        _k("metrics.listener", _metrics_listener, "127.0.0.1:9644",
           "pyk: host:port of the orchestrator's HTTP endpoint for Prometheus (/metrics), /health and /ready; "
           "empty turns it off (docs/metrics.md).", "string"),
        _k("log.format", one_of("text", "json"), "text",
           "pyk: the broker's own log lines on stderr: text (one line per event) or json (one JSON object per "
           "line).", "string"),
        _k("socket.request.max.bytes", _POS_INT, "104857600", "Largest request frame; bigger closes the connection.", "int"),
        # Kafka's default for both is 102400.  pyk keeps -1 (the kernel's autotuning): a fixed
        # 100 KiB buffer stalls sendfile of large fetches; librdkafka consumed 2.5x faster from
        # pyk without it (294k -> 731k msgs/s, 100 B messages, 8 partitions, same machine and run).
        _k("socket.send.buffer.bytes", int_range(-1, INT_MAX), "-1", "SO_SNDBUF of client sockets (-1: kernel autotuning).", "int"),
        _k("socket.receive.buffer.bytes", int_range(-1, INT_MAX), "-1", "SO_RCVBUF of client sockets (-1: kernel autotuning).", "int"),
        _k("socket.listen.backlog.size", _POS_INT, "50", "Listen backlog.", "int"),
        _k("connections.max.idle.ms", _POS_LONG, "600000", "A connection without a byte either way for this long "
           "is closed (one waiting for its long-poll Fetch or a produce acknowledgement is not idle).", "long"),
        _k("max.connections", _NONNEG_INT, str(INT_MAX), "Connections a shard serves at once; at the limit it "
           "stops accepting until one closes (Kafka: new connections are blocked).  Not applied to the listener "
           "named by inter.broker.listener.name.", "int"),
        _k("max.connections.per.ip", _NONNEG_INT, str(INT_MAX), "Connections one client address may hold on a "
           "shard; a new one beyond it is closed with a log line.", "int"),
        _k("max.connections.per.ip.overrides", _ip_overrides, "", "Per-address exceptions to "
           "max.connections.per.ip, as host-or-ip:count,...", "string"),
        _k("queued.max.request.bytes", _ANY_LONG, "268435456", "Bytes of large request frames being received at "
           "once, over all connections of a shard; connections waiting for room are not read (Kafka's memory "
           "pool; 0 or -1: no limit, Kafka's default).", "long"),
        _k("queued.max.requests", _POS_INT, "500", "Requests read ahead per connection before reads pause.", "int"),
        _k("fetch.max.bytes", int_range(1024, INT_MAX), "57671680", "Largest Fetch response the broker builds.", "int"),
        _k("replica.lag.time.max.ms", _POS_LONG, "30000", "Follower lag before leaving the ISR.", "long"),
        _k("zookeeper.connect", _str, None, "ZooKeeper ensemble (host:port[,host:port][/chroot]): this host joins a "
           "cluster coordinated there instead of keeping its metadata alone (docs/cluster.md).", "string"),
        _k("zookeeper.session.timeout.ms", _POS_INT, "18000", "ZooKeeper session timeout: a host silent this long "
           "loses its registration and its leaderships.", "int"),
        _k("zookeeper.connection.timeout.ms", _POS_INT, None, "Wait for the ZooKeeper connection at start-up "
           "(default: zookeeper.session.timeout.ms).", "int"),
        _k("controlled.shutdown.enable", parse_bool, "true", "On SIGTERM a cluster host first asks the controller "
           "to move its leaderships to other in-sync replicas.", "boolean"),
        _k("controlled.shutdown.max.retries", _NONNEG_INT, "3", "Attempts of a controlled shutdown before the host "
           "stops anyway.", "int"),
        _k("controlled.shutdown.retry.backoff.ms", _NONNEG_INT, "5000", "Wait of each controlled-shutdown "
           "attempt.", "int"),
        _k("auto.leader.rebalance.enable", parse_bool, "true", "The controller moves leaderships back to the "
           "preferred replicas when a node's imbalance exceeds leader.imbalance.per.broker.percentage.", "boolean"),
        _k("leader.imbalance.check.interval.seconds", _POS_INT, "300", "Interval of the controller's leader "
           "imbalance check.", "long"),
        _k("leader.imbalance.per.broker.percentage", _NONNEG_INT, "10", "Share of a node's preferred "
           "partitions it may not lead before a rebalance.", "int"),
        _k("broker.rack", _str, None, "Rack of this host (all its shards), for rack-aware replica placement.", "string"),
        _k("replica.selector.class", one_of(RACK_AWARE_REPLICA_SELECTOR, ""), None,
           "Where consumers fetch from (KIP-392): unset, the leader; Kafka's RackAwareReplicaSelector, the replica in "
           "the consumer's client.rack.", "string"),
        _k("num.replica.fetchers", _POS_INT, "1", "Fetcher connections per source node of a follower.", "int"),
        _k("replica.fetch.wait.max.ms", _NONNEG_INT, "500", "Max wait of a follower's fetch.", "int"),
        _k("replica.fetch.min.bytes", _POS_INT, "1", "Min bytes of a follower's fetch answer.", "int"),
        _k("replica.fetch.max.bytes", _POS_INT, "1048576", "Bytes per partition a follower fetches at a time.", "int"),
        _k("replica.fetch.response.max.bytes", _POS_INT, "10485760", "Bytes per fetch answer of a follower.", "int"),
        _k("replica.fetch.backoff.ms", _NONNEG_INT, "1000", "Wait of a follower after a failed fetch.", "int"),
        _k("replica.high.watermark.checkpoint.interval.ms", _POS_LONG, "5000", "How often a cluster host writes "
           "its high watermarks to each log dir's replication-offset-checkpoint (also at a clean shutdown).", "long"),
        _k("unclean.leader.election.enable", parse_bool, "false", "Allow out-of-sync replicas to lead.", "boolean"),
        _k("leader.replication.throttled.rate", _NONNEG_LONG, str(LONG_MAX), "Bytes/s a leader sends of the "
           "partitions listed in leader.replication.throttled.replicas to out-of-sync followers (dynamic).", "long"),
        _k("follower.replication.throttled.rate", _NONNEG_LONG, str(LONG_MAX), "Bytes/s a follower fetches of the "
           "partitions listed in follower.replication.throttled.replicas while not caught up (dynamic).", "long"),
        _k("replication.quota.window.num", _POS_INT, "11", "Samples of the replication throttles' rate.", "int"),
        _k("replication.quota.window.size.seconds", _POS_INT, "1", "Length of one sample of the replication "
           "throttles' rate.", "int"),
        _k("offsets.topic.num.partitions", _POS_INT, "50", "Partitions of __consumer_offsets.", "int"),
        _k("offsets.topic.replication.factor", _POS_INT, "3", "Replication factor of __consumer_offsets.", "int"),
        _k("transaction.state.log.num.partitions", _POS_INT, "50", "Partitions of __transaction_state.", "int"),
        _k("transaction.state.log.replication.factor", _POS_INT, "3", "Replication factor of __transaction_state.", "int"),
        _k("transaction.state.log.min.isr", _POS_INT, "2", "min.insync.replicas of __transaction_state.", "int"),
        _k("transaction.state.log.segment.bytes", int_range(14, INT_MAX), "104857600",
           "Segment size of __transaction_state.", "int"),
        _k("transaction.max.timeout.ms", _POS_INT, "900000",
           "Largest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT above it).", "int"),
        _k("transaction.abort.timed.out.transaction.cleanup.interval.ms", _POS_INT, "10000",
           "How often the coordinator aborts transactions open longer than their timeout.", "int"),
        _k("transactional.id.expiration.ms", _POS_INT, "604800000",
           "A transactional id with no transaction for this long is forgotten.", "int"),
        _k("transaction.remove.expired.transaction.cleanup.interval.ms", _POS_INT, "3600000",
           "How often expired transactional ids are removed.", "int"),
        _k("group.initial.rebalance.delay.ms", _NONNEG_INT, "3000", "Wait for more members before the first rebalance.", "int"),
        _k("group.min.session.timeout.ms", _NONNEG_INT, "6000", "Smallest session.timeout.ms a member may ask for.", "int"),
        _k("group.max.session.timeout.ms", _NONNEG_INT, "1800000", "Largest session.timeout.ms a member may ask for.", "int"),
        _k("group.max.size", _POS_INT, str(INT_MAX), "Most members a consumer group may have.", "int"),
        _k("group.consumer.session.timeout.ms", _POS_INT, "45000",
           "Session timeout of consumer-protocol (KIP-848) members, chosen by the broker.", "int"),
        _k("group.consumer.heartbeat.interval.ms", _POS_INT, "5000",
           "Heartbeat interval the broker gives consumer-protocol (KIP-848) members.", "int"),
        _k("group.consumer.max.size", _POS_INT, str(INT_MAX), "Most members a consumer-protocol group may have.", "int"),
        _k("offsets.topic.segment.bytes", int_range(14, INT_MAX), "104857600", "Segment size of __consumer_offsets.", "int"),
        _k("offsets.retention.minutes", _POS_INT, "10080", "How long offsets of an empty group are kept.", "int"),
        _k("offsets.commit.timeout.ms", _POS_INT, "5000", "In a cluster, how long offset commits and group "
           "writes wait for the ISR of their __consumer_offsets partition.", "int"),
        _k("request.timeout.ms", _POS_INT, "30000", "In a cluster, how long transaction state writes wait for "
           "the ISR of their __transaction_state partition, and transaction markers for the ISR of theirs.", "int"),
        _k("offsets.retention.check.interval.ms", _POS_LONG, "600000", "How often expired offsets are removed.", "long"),
        _k("offset.metadata.max.bytes", _NONNEG_INT, "4096", "Largest metadata string of a committed offset.", "int"),
        # Security (pyk.server.security): TLS from PEM files, SASL, re-authentication.  Each may
        # also be set for one listener as listener.name.<listener>.<key>.
        _k("ssl.keystore.type", one_of("PEM"), "PEM", "Format of ssl.keystore.location (pyk reads PEM only).", "string"),
        _k("ssl.keystore.location", _str, None, "PEM file with the listener's private key and certificate chain.",
           "string"),
        _k("ssl.key.password", _str, None, "Password of the (encrypted) private key in the keystore.", "password"),
        _k("ssl.keystore.password", _str, None, "Kafka's store password; for a PEM keystore ssl.key.password counts.",
           "password"),
        _k("ssl.truststore.type", one_of("PEM"), "PEM", "Format of ssl.truststore.location (PEM only).", "string"),
        _k("ssl.truststore.location", _str, None, "PEM file of the CA certificates client certificates are checked "
           "against.", "string"),
        _k("ssl.truststore.password", _str, None, "Kafka's truststore password; unused for PEM.", "password"),
        _k("ssl.client.auth", one_of("required", "requested", "none"), "none",
           "Whether SSL clients must (required) or may (requested) present a certificate.", "string"),
        _k("ssl.enabled.protocols", _list, "TLSv1.2,TLSv1.3", "TLS versions accepted.", "list"),
        _k("ssl.endpoint.identification.algorithm", one_of("https", ""), "https",
           "https: a broker checks the host name of the broker it connects to against its certificate; empty: not.",
           "string"),
        _k("ssl.principal.mapping.rules", one_of("DEFAULT"), "DEFAULT",
           "How a client certificate's subject becomes the principal (DEFAULT: User:<RFC 2253 subject>).", "string"),
        _k("ssl.kernel.tls.enable", parse_bool, "true", "pyk: where the kernel has TLS (the tls module), a TLS "
           "connection's sending goes to it after the handshake, so fetches stay zero-copy (docs/security.md).",
           "boolean"),
        _k("sasl.enabled.mechanisms", _list, "GSSAPI", "SASL mechanisms a SASL listener accepts.", "list"),
        _k("sasl.jaas.config", _str, None, "JAAS login module line(s); PlainLoginModule user_<name>=\"<password>\" "
           "entries are PLAIN's users.", "password"),
        _k("java.security.auth.login.config", _str, None, "JAAS file whose KafkaServer (or <listener>.KafkaServer) "
           "section serves SASL where no sasl.jaas.config key is set; unset: the "
           "-Djava.security.auth.login.config=<file> of KAFKA_OPTS, as Kafka's JVM takes it.", "string"),
        _k("sasl.kerberos.service.name", _str, None, "Kerberos service name of the broker (GSSAPI): the first "
           "component of its principal.", "string"),
        _k("sasl.server.max.receive.size", _POS_INT, "524288",
           "Largest frame a SASL listener reads before the client authenticated.", "int"),
        _k("sasl.mechanism.inter.broker.protocol", _str, "GSSAPI", "SASL mechanism between brokers: PLAIN, "
           "SCRAM-SHA-256/512 or GSSAPI, with the credentials of the inter-broker listener's JAAS line for it.",
           "string"),
        _k("security.inter.broker.protocol", one_of(*SECURITY_PROTOCOLS), "PLAINTEXT",
           "Security protocol between brokers: the listener of that name is the inter-broker one.", "string"),
        _k("inter.broker.listener.name", _str, None, "Listener brokers talk to each other on (replica fetchers, "
           "transaction markers); must be advertised.", "string"),
        _k("connections.max.reauth.ms", _NONNEG_LONG, "0",
           "SASL session lifetime: a client must re-authenticate within it (KIP-368); 0: never expires.", "long"),
        _k("sasl.oauthbearer.jwks.endpoint.url", _str, None,
           "JWKS (file:// or https://) whose keys sign OAUTHBEARER tokens.", "string"),
        _k("sasl.oauthbearer.expected.audience", _list, None, "Audiences a token must name (any one).", "list"),
        _k("sasl.oauthbearer.expected.issuer", _str, None, "Issuer (iss) a token must carry.", "string"),
        _k("sasl.oauthbearer.sub.claim.name", _str, "sub", "Claim that names the principal.", "string"),
        _k("sasl.oauthbearer.clock.skew.seconds", _NONNEG_INT, "30", "Clock skew allowed on exp/nbf/iat.", "int"),
        # Authorization (pyk.server.security.authorizer): Kafka's two built-in authorizers both
        # turn on pyk's ACL authorizer; empty: none (the ACL APIs answer SECURITY_DISABLED).
        _k("authorizer.class.name", one_of("", *AUTHORIZER_CLASSES), "",
           "ACL authorizer: kafka.security.authorizer.AclAuthorizer or "
           "org.apache.kafka.metadata.authorizer.StandardAuthorizer (both pyk's ACLs); empty: no authorization.",
           "string"),
        _k("super.users", _super_users, "", "Principals allowed everything, separated by ';' "
           "(User:admin;User:ANONYMOUS).", "list"),
        _k("allow.everyone.if.no.acl.found", parse_bool, "false",
           "Allow an operation on a resource no ACL names (false: denied).", "boolean"),
        _k("quota.window.num", _POS_INT, "11",
           "Samples kept of each client quota's rate (KIP-13): the rate is measured over this many windows.", "int"),
        _k("quota.window.size.seconds", _POS_INT, "1", "Length of one client quota sample window.", "int"),
        _k("max.incremental.fetch.session.cache.slots", _NONNEG_INT, "1000", "Incremental fetch sessions kept.", "int"),
        _k("shard.balancer.enable", parse_bool, "false",
           "pyk: move partitions from the hottest shard to the coolest when their loads (bytes in and out per "
           "second) drift apart (off: benchmarks want a fixed placement; `pyk shards balance` works either way).",
           "boolean"),
        _k("shard.balancer.window.ms", _POS_LONG, "60000",
           "pyk: the window over which the shard balancer measures each partition's bytes in and out.", "long"),
        _k("shard.balancer.threshold.percent", int_range(0, 100), "20",
           "pyk: the skew (hottest shard's load above the coolest's, in percent of the hottest) that the "
           "balancer corrects, and down to which it moves partitions.", "int"),
        _k("shard.balancer.min.bytes.per.sec", _NONNEG_LONG, "1048576",
           "pyk: automatic balancing moves nothing while the hottest shard's load is below this.", "long"),
        _k("console.listener", _host_port, "127.0.0.1:9645",
           "pyk: host:port of the built-in web console, served by the orchestrator (empty: off).", "string"),
    ]
}


# The keys that may be changed at run time on a BROKER resource, as in Kafka's DynamicBrokerConfig:
# the primary server synonym of each topic key (DynamicLogConfig: ServerTopicConfigSynonyms'
# first synonym; so log.retention.ms is dynamic but log.retention.hours is not), the cleaner's
# (LogCleaner.ReconfigurableConfigs) and the thread pools' (DynamicThreadPool), restricted to the
# keys pyk has, plus the replication throttles' rates (Kafka's QuotaConfig broker keys).  pyk runs
# no thread pools for requests, so num.io.threads / num.network.threads /
# num.recovery.threads.per.data.dir are stored and described only.
DYNAMIC_KEYS = frozenset({
    "log.segment.bytes", "log.roll.ms", "log.roll.jitter.ms", "log.index.size.max.bytes", "log.flush.interval.messages",
    "log.flush.interval.ms", "log.retention.bytes", "log.retention.ms", "message.max.bytes",
    "log.index.interval.bytes", "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms", "log.segment.delete.delay.ms", "log.cleaner.min.cleanable.ratio",
    "log.cleanup.policy", "unclean.leader.election.enable", "min.insync.replicas", "compression.type",
    "log.preallocate", "log.message.timestamp.type", "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms", "log.message.format.version",
    "log.message.downconversion.enable", "log.segment.writeback.bytes",
    "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.size",
    "log.cleaner.io.buffer.load.factor", "log.cleaner.backoff.ms",
    "num.io.threads", "num.network.threads", "num.recovery.threads.per.data.dir",
    "leader.replication.throttled.rate", "follower.replication.throttled.rate",
})


def _listener_scoped(name: str) -> bool:
    """`listener.name.<listener>.[<mechanism>.]<key>` with a security key (see LISTENER_SCOPED_PREFIXES)."""
    if not name.startswith("listener.name."):
        return False
    rest = name[len("listener.name."):].partition(".")[2]
    head, _, tail = rest.partition(".")
    return rest.startswith(LISTENER_SCOPED_PREFIXES) or (head.upper() in SASL_MECHANISMS
                                                         and tail.startswith(LISTENER_SCOPED_PREFIXES))


HIDDEN = "[hidden]"  # what a log line shows of a sensitive value (Kafka's Password.HIDDEN)


def config_type(name: str) -> str | None:
    """A broker key's type as Kafka's KafkaConfig.configType finds it: the key's own, else for a
    listener override (`listener.name.<listener>.<key>`) that of `<key>`; None if unknown."""
    key = KEYS.get(name)
    if key is None and name.startswith("listener.name."):
        key = KEYS.get(name[len("listener.name."):].partition(".")[2])
    return key.type_name if key is not None else None


def maybe_sensitive(name: str) -> bool:
    """Whether a broker key's value is a secret, Kafka's KafkaConfig.maybeSensitive: a PASSWORD key
    (ssl.key.password, sasl.jaas.config, ... and their listener overrides), or one whose type is
    unknown (a custom key; a mechanism's listener.name.<l>.<mech>.sasl.jaas.config), to be safe.
    DescribeConfigs answers such a key's value (and its synonyms') as null, and logs hide it."""
    return config_type(name) in (None, "password")


def loggable(configs: Mapping[str, str]) -> dict[str, str]:
    """`configs` with the sensitive values replaced by HIDDEN, for log lines (Kafka's loggableValue)."""
    return {name: HIDDEN if maybe_sensitive(name) else value for name, value in configs.items()}


def check_dynamic(names: Iterable[str]) -> None:
    """Refuses known keys that cannot change at run time (Kafka's ConfigException text).

    Keys pyk does not know are accepted, as Kafka accepts custom broker configs (for plugins).
    """
    static = sorted(n for n in names if n in KEYS and n not in DYNAMIC_KEYS)
    if static:
        raise ConfigError(f"Cannot update these configs dynamically: Set({', '.join(static)})")


def _read_properties(text: str) -> dict[str, str]:
    """Java .properties subset Kafka configs use: `key=value` / `key: value`, `#`/`!` comments,
    backslash line continuations."""
    out: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut < 0:
            raise ConfigError(f"expected key=value, found {line!r}")
        out[line[:cut].strip()] = line[cut + 1 :].strip()
    return out


class ServerConfig(Mapping[str, Any]):
    """Typed, validated server settings; a read-only mapping from Kafka key names to values.

    Every known key is present (unset optional keys map to None).  Immutable: the static settings
    are built once per process; a change of the dynamic layers builds a new instance
    (`with_dynamic`).  `raw` holds the static text (server.properties + --override),
    `dynamic_default` / `dynamic_broker` the cluster-wide and per-node dynamic text.
    """

    def __init__(self, raw: Mapping[str, str], dynamic_default: Mapping[str, str] | None = None,
                 dynamic_broker: Mapping[str, str] | None = None) -> None:
        self.raw = dict(raw)
        self.dynamic_default = dict(dynamic_default or {})
        self.dynamic_broker = dict(dynamic_broker or {})
        self.unknown = sorted(k for k in raw if k not in KEYS and not _listener_scoped(k))
        merged = {**self.raw, **self.dynamic_default, **self.dynamic_broker}
        values: dict[str, Any] = {}
        for name, key in KEYS.items():
            text = merged.get(name, key.default)
            if text is None:
                values[name] = None
                continue
            try:
                values[name] = key.parse(text)
            except ValueError as exc:
                raise ConfigError(f"invalid value {text!r} for {name}: {exc}") from None
        self._values = values
        self._check()

    @classmethod
    def load(cls, path: str | None = None, overrides: list[str] | None = None) -> ServerConfig:
        raw: dict[str, str] = {}
        if path is not None:
            try:
                with open(path, encoding="utf-8") as fh:
                    raw.update(_read_properties(fh.read()))
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        for item in overrides or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--override expects key=value, found {item!r}")
            raw[key.strip()] = value.strip()
        config = cls(raw)
        for key in config.unknown:
            log.warning("unknown config key %s ignored", key)
        warn_removed(config.raw, "server config")
        return config

    def with_dynamic(self, default: Mapping[str, str], broker: Mapping[str, str]) -> ServerConfig:
        """These static settings under new dynamic layers; ConfigError if a value is invalid."""
        return ServerConfig(self.raw, default, broker)

    def text_of(self, name: str) -> str | None:
        """The effective text of a key: per-node dynamic, cluster dynamic, static, default."""
        for layer in (self.dynamic_broker, self.dynamic_default, self.raw):
            if name in layer:
                return layer[name]
        key = KEYS.get(name)
        return key.default if key is not None else None

    def _check(self) -> None:
        if self["broker.id"] >= 0 and "node.id" not in self.raw:
            self._values["node.id"] = self["broker.id"]
        if not self.log_dirs:
            raise ConfigError("log.dirs must name at least one directory")
        names = [lst.name for lst in self.listeners]
        if len(set(names)) != len(names):
            raise ConfigError(f"listener names must be unique, found {names}")
        protocols = self["listener.security.protocol.map"]
        for lst in self.listeners:
            # Kafka: a listener's name is looked up in listener.security.protocol.map, whose
            # default maps each protocol name to itself (INTERNAL://... needs INTERNAL:PROTOCOL).
            protocol = protocols.get(lst.name)
            if protocol is None:
                raise ConfigError(f"no security protocol for listener {lst}: {lst.name} is not in "
                                  f"listener.security.protocol.map ({self.text_of('listener.security.protocol.map')})")
        if "inter.broker.listener.name" in self.raw and "security.inter.broker.protocol" in self.raw:
            raise ConfigError("only one of inter.broker.listener.name and security.inter.broker.protocol may be set")
        if self["zookeeper.connect"] or "inter.broker.listener.name" in self.raw \
                or "security.inter.broker.protocol" in self.raw:
            name = self._inter_broker_listener_name()
            if not any(a.name == name for a in self.advertised_listeners):
                raise ConfigError(f"the inter-broker listener {name} (inter.broker.listener.name, else "
                                  f"security.inter.broker.protocol) is not among the advertised listeners "
                                  f"({', '.join(str(a) for a in self.advertised_listeners)})")
        if self["message.max.bytes"] > self["socket.request.max.bytes"]:
            raise ConfigError("message.max.bytes cannot exceed socket.request.max.bytes")

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # Derived settings --------------------------------------------------------------------------
    @property
    def listeners(self) -> list[Listener]:
        return cast(list[Listener], self["listeners"])

    @property
    def advertised_listeners(self) -> list[Listener]:
        """What clients are told to connect to: advertised.listeners, else the listeners with a
        wildcard host replaced by 127.0.0.1 (a wildcard is not an address a client can dial)."""
        chosen = self["advertised.listeners"] or self.listeners
        return [Listener(lst.name, lst.host if lst.host not in ("", "0.0.0.0", "::") else "127.0.0.1", lst.port)
                for lst in chosen]

    def _inter_broker_listener_name(self) -> str:
        name = self["inter.broker.listener.name"]
        return name.upper() if name else str(self["security.inter.broker.protocol"])

    @property
    def inter_broker_listener(self) -> Listener:
        """The advertised listener other brokers (replica fetchers, transaction markers) connect
        to: inter.broker.listener.name, else the one named after security.inter.broker.protocol
        (Kafka's rule); a single host without either set falls back to the first listener."""
        name = self._inter_broker_listener_name()
        advertised = self.advertised_listeners
        return next((a for a in advertised if a.name == name), advertised[0])

    @property
    def node_id(self) -> int:
        return int(self["node.id"])

    @property
    def log_dirs(self) -> list[str]:
        return cast(list[str], self["log.dirs"] or self["log.dir"])

    def source_of(self, key: str) -> str:
        """Where a key's effective value comes from: dynamic_broker, dynamic_default, static or default."""
        if key in self.dynamic_broker:
            return "dynamic_broker"
        if key in self.dynamic_default:
            return "dynamic_default"
        return "static" if key in self.raw else "default"
