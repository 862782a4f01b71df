"""`pyk produce` and `pyk consume`: kcat's producer and consumer modes, on librdkafka.

Built on confluent-kafka (librdkafka, pyk's runtime client already), so they behave as a
Kafka client does against any Kafka-protocol broker; rich draws a progress display on a
terminal (stderr) for runs longer than a glance, and nothing when the output is piped.

produce: one record per input line (or per `-D` delimiter), `-K DELIM` splits a key off each
line, `-H name=value` adds headers to every record, `-p` picks a partition, `-T` a timestamp.

consume: from `-o` (beginning, end, stored, an offset, -N from the end, or s@<ms> the first
record at or after a timestamp) up to `--to` (an offset, e@<ms> a timestamp, or end: the log end
when the consumer started); `-e` stops at the end of every partition, `-c` after N records;
`-G GROUP` consumes as a member of a consumer group and commits.  `-f` formats each record with
kcat's tokens: %t topic, %p partition, %o offset, %k key, %s value, %K key length, %S value
length, %h headers (name=value,...), %T timestamp (ms), %% percent; \\n \\t \\\\ escapes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)

from pyk.tools.output import STDERR as _STDERR
from pyk.tools.output import ProgressBar

_TOKEN = re.compile(rb"%[tpokshKST%]|\\[nt\\]")
_ESCAPES = {b"\\n": b"\n", b"\\t": b"\t", b"\\\\": b"\\", b"%%": b"%"}


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("produce", help="produce records from stdin or a file (kcat -P)")
    p.add_argument("topic")
    p.add_argument("--bootstrap", "-b", default="127.0.0.1:9092", help="host:port of any broker node")
    p.add_argument("--partition", "-p", type=int, default=None, help="default: the partitioner's choice")
    p.add_argument("--key-delimiter", "-K", default=None, help="split each record into key DELIM value")
    p.add_argument("--delimiter", "-D", default="\n", help="record delimiter (default: newline)")
    p.add_argument("--header", "-H", action="append", default=[], metavar="NAME=VALUE",
                   help="a header on every record (repeatable)")
    p.add_argument("--timestamp", "-T", type=int, default=None, help="CreateTime of every record (ms)")
    p.add_argument("--file", default=None, help="read records from this file instead of stdin")
    p.add_argument("-X", dest="props", action="append", default=[], metavar="PROP=VALUE",
                   help="librdkafka producer property (repeatable), e.g. -X acks=all")
    c = sub.add_parser("consume", help="consume records to stdout (kcat -C)")
    c.add_argument("topic")
    c.add_argument("--bootstrap", "-b", default="127.0.0.1:9092", help="host:port of any broker node")
    c.add_argument("--partition", "-p", type=int, action="append", default=None, help="only these (repeatable)")
    c.add_argument("--offset", "-o", default=None,
                   help="start: beginning | end | stored | OFFSET | -N (from the end) | s@TIMESTAMP_MS "
                        "(default: beginning; a group's committed offsets with -G)")
    c.add_argument("--to", default=None, help="stop each partition at: OFFSET (exclusive) | e@TIMESTAMP_MS | end")
    c.add_argument("--exit", "-e", action="store_true", help="stop at the end of every partition")
    c.add_argument("--count", "-c", type=int, default=None, help="stop after this many records")
    c.add_argument("--group", "-G", default=None, help="consume as a member of this group, committing offsets")
    c.add_argument("--format", "-f", default="%s\\n", help="output format (kcat tokens, see `pyk consume -h`)")
    c.add_argument("-X", dest="props", action="append", default=[], metavar="PROP=VALUE",
                   help="librdkafka consumer property (repeatable)")


def _props(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


# Produce -----------------------------------------------------------------------------------------
def produce(args: argparse.Namespace) -> int:
    headers = [(name, value.encode()) for name, _, value in (h.partition("=") for h in args.header)]
    delimiter = args.delimiter.encode().decode("unicode_escape").encode()
    key_delimiter = args.key_delimiter.encode() if args.key_delimiter is not None else None
    failures: list[str] = []
    delivered = 0

    def on_delivery(err: Any, _: Any) -> None:
        nonlocal delivered
        if err is not None:
            failures.append(str(err))
        else:
            delivered += 1

    producer = Producer({"bootstrap.servers": args.bootstrap, **_props(args.props)})
    source: BinaryIO = open(args.file, "rb") if args.file else sys.stdin.buffer  # noqa: SIM115
    total = _file_size(args.file)
    sent = 0
    with source, ProgressBar("producing", total) as advance:
        for record in _split(source, delimiter):
            key, value = (record.split(key_delimiter, 1) if key_delimiter and key_delimiter in record
                          else (None, record))
            kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
            if args.partition is not None:
                kwargs["partition"] = args.partition
            if headers:
                kwargs["headers"] = headers
            if args.timestamp is not None:
                kwargs["timestamp"] = args.timestamp
            while True:
                try:
                    producer.produce(args.topic, **kwargs)
                    break
                except BufferError:  # the local queue is full: serve delivery reports first
                    producer.poll(0.1)
            producer.poll(0)
            sent += 1
            advance(len(record) + len(delimiter))
        left = producer.flush(60)
    if left or failures:
        _STDERR.print(f"[red]error:[/] {len(failures) + left} of {sent} records not delivered"
                      + (f": {failures[0]}" if failures else ""), soft_wrap=True)
        return 1
    _STDERR.print(f"produced {delivered} records to {args.topic}", soft_wrap=True)
    return 0


def _file_size(path: str | None) -> int | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.seek(0, 2)


def _split(source: BinaryIO, delimiter: bytes) -> Iterator[bytes]:
    """Records separated by `delimiter`; a trailing delimiter makes no empty record."""
    pending = b""
    while chunk := source.read(1 << 16):
        pending += chunk
        *records, pending = pending.split(delimiter)
        yield from records
    if pending:
        yield pending


# Consume -----------------------------------------------------------------------------------------
class _Stop:
    """Where each partition stops: an offset (exclusive), a timestamp, or never."""

    def __init__(self, to: str | None) -> None:
        self.offset: int | None = None
        self.timestamp: int | None = None
        self.at_end = to == "end"
        if to is not None and not self.at_end:
            if to.startswith("e@"):
                self.timestamp = int(to[2:])
            else:
                self.offset = int(to)

    def reached(self, offset: int, timestamp: int, end: int | None) -> bool:
        return ((self.offset is not None and offset >= self.offset)
                or (self.timestamp is not None and timestamp >= self.timestamp)
                or (end is not None and offset >= end))


def consume(args: argparse.Namespace) -> int:
    conf = {"bootstrap.servers": args.bootstrap, "enable.partition.eof": True,
            "group.id": args.group or "pyk-consume", "enable.auto.commit": args.group is not None,
            "auto.offset.reset": "earliest", **_props(args.props)}
    consumer = Consumer(conf)
    stop = _Stop(args.to)
    write = _formatter(args.format.encode())
    out = sys.stdout.buffer
    ends: dict[tuple[str, int], int] = {}  # the log end at start: `--to end` stops there
    done: set[tuple[str, int]] = set()
    partitions: list[int] = []
    try:
        metadata = consumer.list_topics(args.topic, timeout=10)
        topic = metadata.topics.get(args.topic)
        if topic is None or topic.error is not None:
            reason = topic.error if topic is not None else "unknown"
            _STDERR.print(f"[red]error:[/] topic {args.topic}: {reason}", soft_wrap=True)
            return 1
        partitions = sorted(args.partition or topic.partitions)
        if stop.at_end:
            for p in partitions:
                ends[(args.topic, p)] = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)[1]
        if args.group is not None:
            def on_assign(c: Consumer, assigned: list[TopicPartition]) -> None:
                if args.offset is not None:
                    c.assign(_starts(c, [(tp.topic, tp.partition) for tp in assigned], args.offset))

            consumer.subscribe([args.topic], on_assign=on_assign)
        else:
            consumer.assign(_starts(consumer, [(args.topic, p) for p in partitions], args.offset or "beginning"))
        bounded = args.exit or args.to is not None  # else: until --count or Ctrl-C
        received = 0
        with ProgressBar("consuming", args.count) as advance:
            while args.count is None or received < args.count:
                message = consumer.poll(0.5)
                if message is None:
                    continue
                topic_name, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic_name is not None and partition is not None and offset is not None
                key = (topic_name, partition)
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    _STDERR.print(f"[red]error:[/] {error}", soft_wrap=True)
                    return 1
                if error is not None:  # the end of the partition, for now
                    if args.exit or (stop.at_end and offset >= ends.get(key, 0)):
                        done.add(key)
                elif key in done or stop.reached(offset, message.timestamp()[1], ends.get(key)):
                    done.add(key)
                else:
                    out.write(write(message))
                    received += 1
                    advance(1)
                if bounded and all((args.topic, p) in done for p in partitions):
                    break
        out.flush()
    finally:
        consumer.close()
    return 0


def _starts(consumer: Consumer, partitions: list[tuple[str, int]], spec: str) -> list[TopicPartition]:
    """TopicPartitions at the start offset `spec` names (see the module docstring)."""
    if spec.startswith("s@"):
        wanted = [TopicPartition(t, p, int(spec[2:])) for t, p in partitions]
        found = consumer.offsets_for_times(wanted, timeout=10)
        return [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found]
    named = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END, "stored": OFFSET_STORED}
    if spec in named:
        return [TopicPartition(t, p, named[spec]) for t, p in partitions]
    offset = int(spec)
    if offset >= 0:
        return [TopicPartition(t, p, offset) for t, p in partitions]
    out = []
    for t, p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)
        out.append(TopicPartition(t, p, max(low, high + offset)))
    return out


def _formatter(fmt: bytes) -> Callable[[Any], bytes]:
    """kcat's -f: the format split once into literal bytes and token handlers."""
    fields: dict[bytes, Callable[[Any], bytes]] = {
        b"%t": lambda m: m.topic().encode(),
        b"%p": lambda m: str(m.partition()).encode(),
        b"%o": lambda m: str(m.offset()).encode(),
        b"%k": lambda m: m.key() or b"",
        b"%s": lambda m: m.value() or b"",
        b"%K": lambda m: str(len(m.key()) if m.key() is not None else -1).encode(),
        b"%S": lambda m: str(len(m.value()) if m.value() is not None else -1).encode(),
        b"%T": lambda m: str(m.timestamp()[1]).encode(),
        b"%h": lambda m: b",".join(name.encode() + b"=" + (value or b"") for name, value in (m.headers() or [])),
    }
    parts: list[bytes | Callable[[Any], bytes]] = []
    last = 0
    for match in _TOKEN.finditer(fmt):
        parts.append(fmt[last:match.start()])
        token = match.group()
        parts.append(_ESCAPES[token] if token in _ESCAPES else fields[token])
        last = match.end()
    parts.append(fmt[last:])
    return lambda m: b"".join(part if isinstance(part, bytes) else part(m) for part in parts)
