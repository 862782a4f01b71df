"""What one bench run does: the `Workload` settings shared by the raw and librdkafka clients.

Client properties keep librdkafka's names (`-X` producer, `-Y` consumer), so a sweep of
`linger.ms` means the same with `--client raw` and `--client librdkafka`.  The raw client
honours the properties listed in RAW_PRODUCER_PROPS / RAW_CONSUMER_PROPS (with librdkafka's
defaults, except max.in.flight: see below) and reports the others as ignored; the librdkafka
client passes every property through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyk.bench.batches import CODECS

MODES = ("produce", "consume", "e2e")
CLIENTS = ("raw", "librdkafka")

# Raw producer: property -> (aliases, default).  librdkafka's defaults, except max.in.flight:
# librdkafka allows 1,000,000 requests in flight per connection; the raw generator pipelines at
# most 5 (the Java client's default), which already keeps a broker busy with 1 MB batches.
RAW_PRODUCER_PROPS: dict[str, tuple[tuple[str, ...], str]] = {
    "acks": (("request.required.acks",), "-1"),
    "compression.type": (("compression.codec",), "none"),
    "linger.ms": (("queue.buffering.max.ms",), "5"),
    "batch.size": ((), "1000000"),
    "batch.num.messages": ((), "10000"),
    "max.in.flight": (("max.in.flight.requests.per.connection",), "5"),
    "request.timeout.ms": (("message.timeout.ms",), "30000"),
    "client.id": ((), "pyk-bench"),
}
RAW_CONSUMER_PROPS: dict[str, tuple[tuple[str, ...], str]] = {
    "fetch.wait.max.ms": ((), "500"),
    "fetch.min.bytes": ((), "1"),
    "fetch.max.bytes": ((), "52428800"),
    "max.partition.fetch.bytes": (("fetch.message.max.bytes",), "1048576"),
    "check.crcs": ((), "false"),
    "client.id": ((), "pyk-bench"),
}

# librdkafka consumer-only properties: a sweep key among these goes to -Y, not -X.
CONSUMER_KEYS = frozenset({
    "fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes",
    "fetch.message.max.bytes", "fetch.error.backoff.ms", "fetch.queue.backoff.ms", "queued.min.messages",
    "queued.max.messages.kbytes", "check.crcs", "isolation.level", "auto.offset.reset", "group.id",
    "enable.auto.commit", "auto.commit.interval.ms", "session.timeout.ms", "heartbeat.interval.ms",
    "max.poll.interval.ms", "enable.partition.eof", "group.instance.id", "partition.assignment.strategy",
})
# librdkafka producer properties a sweep may name without a prefix.
PRODUCER_KEYS = frozenset({
    "acks", "request.required.acks", "linger.ms", "queue.buffering.max.ms", "batch.size",
    "batch.num.messages", "compression.type", "compression.codec", "compression.level",
    "max.in.flight", "max.in.flight.requests.per.connection", "enable.idempotence",
    "queue.buffering.max.messages", "queue.buffering.max.kbytes", "message.timeout.ms",
    "request.timeout.ms", "sticky.partitioning.linger.ms", "partitioner", "retries", "retry.backoff.ms",
    "socket.send.buffer.bytes", "socket.receive.buffer.bytes", "socket.nagle.disable", "message.max.bytes",
})
# Keys that may be either side's (socket.*, client.id): go to both when swept.
SHARED_KEYS = frozenset({"client.id", "socket.send.buffer.bytes", "socket.receive.buffer.bytes",
                         "socket.nagle.disable", "message.max.bytes"})


def parse_props(items: list[str] | None, what: str) -> dict[str, str]:
    """`key=value` strings -> dict (ValueError naming the bad item)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what}: expected key=value, found {item!r}")
        out[key.strip()] = value.strip()
    return out


def acks_value(text: str) -> int:
    text = text.strip().lower()
    if text in ("all", "-1"):
        return -1
    if text in ("0", "1"):
        return int(text)
    raise ValueError(f"acks must be 0, 1, all or -1, found {text!r}")


def resolve(props: dict[str, str], table: dict[str, tuple[tuple[str, ...], str]]) -> tuple[dict[str, str], list[str]]:
    """The raw client's view of librdkafka properties: (canonical -> value with defaults, ignored keys)."""
    out = {name: default for name, (_, default) in table.items()}
    alias = {a: name for name, (aliases, _) in table.items() for a in aliases}
    ignored = []
    for key, value in props.items():
        name = key if key in table else alias.get(key)
        if name is None:
            ignored.append(key)
        else:
            out[name] = value
    return out, ignored


@dataclass
class Workload:
    """One run: what to send or read, how much, how fast, with which client settings.

    `messages` and `duration` both bound a run (0 = no bound; at least one is set).  `rate` is
    in messages per second over the whole run (0 = as fast as possible).  `topic_configs` go
    into CreateTopics when the bench creates the topic."""

    mode: str
    bootstrap: str
    topic: str
    partitions: int = 1
    replication: int = 1
    size: int = 100
    rate: float = 0.0
    duration: float = 10.0
    messages: int = 0
    producer_props: dict[str, str] = field(default_factory=dict)
    consumer_props: dict[str, str] = field(default_factory=dict)
    topic_configs: dict[str, str] = field(default_factory=dict)
    client: str = "raw"
    procs: int = 1
    connections: int = 1
    interval: float = 1.0
    warmup: float = 0.0
    idle_timeout: float = 5.0
    create_topic: bool = True
    from_start: bool = True  # consume: from the earliest offset (else from the end)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, found {self.mode!r}")
        if self.client not in CLIENTS:
            raise ValueError(f"client must be one of {', '.join(CLIENTS)}, found {self.client!r}")
        if self.size < 0 or self.partitions < 1 or self.procs < 1 or self.connections < 1:
            raise ValueError("size >= 0, partitions >= 1, procs >= 1 and connections >= 1 are required")
        if self.messages <= 0 and self.duration <= 0:
            raise ValueError("give --duration or --messages (or both)")
        if self.mode == "e2e" and self.size < 16:
            raise ValueError("e2e latency needs messages of at least 16 bytes (the stamp)")

    @property
    def acks(self) -> int:
        props, _ = resolve(self.producer_props, RAW_PRODUCER_PROPS)
        return acks_value(props["acks"])

    @property
    def codec(self) -> int:
        props, _ = resolve(self.producer_props, RAW_PRODUCER_PROPS)
        name = props["compression.type"].lower()
        if name not in CODECS:
            raise ValueError(f"compression.type must be one of {', '.join(CODECS)}, found {name!r}")
        return CODECS[name]

    def describe(self) -> dict[str, Any]:
        """The settings as the JSON report records them."""
        return {
            "mode": self.mode, "client": self.client, "bootstrap": self.bootstrap, "topic": self.topic,
            "partitions": self.partitions, "size": self.size, "rate": self.rate, "duration": self.duration,
            "messages": self.messages, "producer_props": dict(self.producer_props),
            "consumer_props": dict(self.consumer_props), "topic_configs": dict(self.topic_configs),
            "procs": self.procs, "connections": self.connections, "warmup": self.warmup,
        }  # fmt: skip
