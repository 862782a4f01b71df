"""`pyk dump-log`: Kafka's kafka-dump-log.sh (DumpLogSegments) for a partition's files.

Prints `.log`, `.index`, `.timeindex` and `.txnindex` files line for line as Kafka's tool does
(tests/java/test_kafka_tools_dump_log.py compares the two on the same files), so scripts written
for Kafka's output read pyk's.  It reads the files directly, like Kafka's tool: no broker is
needed, and a running broker is not disturbed (reads only).  A segment larger than a glance
shows a rich progress bar on a terminal (stderr; stdout stays the dump).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from pyk import _native
from pyk.log.record_batch import (
    ATTR_COMPRESSION_MASK,
    ATTR_CONTROL,
    ATTR_DELETE_HORIZON,
    ATTR_TIMESTAMP_TYPE,
    ATTR_TRANSACTIONAL,
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    HEADER,
    LOG_OVERHEAD,
)
from pyk.protocol import primitives as p

_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
_OFFSET_ENTRY = struct.Struct(">ii")  # relative offset, position
_TIME_ENTRY = struct.Struct(">qi")  # timestamp, relative offset
_TXN_ENTRY = struct.Struct(">hqqqq")  # version, producer id, first, last, last stable offset
_CONTROL_TYPES = {0: "ABORT", 1: "COMMIT"}
_PROGRESS_BYTES = 64 << 20  # segments above this get a progress bar on a terminal


def add_parser(sub: Any) -> None:
    p_ = sub.add_parser("dump-log", help="print segment, index and txnindex files as kafka-dump-log.sh does")
    p_.add_argument("--files", required=True, help="comma-separated .log/.index/.timeindex/.txnindex files")
    p_.add_argument("--deep-iteration", action="store_true", help="print every record, not only batches")
    p_.add_argument("--print-data-log", action="store_true", help="print keys and values (implies --deep-iteration)")


def run(args: argparse.Namespace) -> int:
    code = 0
    for path in args.files.split(","):
        try:
            dump_file(path, deep=args.deep_iteration or args.print_data_log, data=args.print_data_log, out=sys.stdout)
        except OSError as exc:
            print(f"pyk dump-log: {path}: {exc.strerror}", file=sys.stderr)
            code = 1
    return code


def dump_file(path: str, deep: bool, data: bool, out: TextIO) -> None:
    """One file, with the `Dumping <path>` line Kafka starts each with."""
    base_offset = int(os.path.basename(path).split(".")[0])
    print(f"Dumping {path}", file=out)
    with open(path, "rb") as f:
        content = f.read()
    if path.endswith(".log"):
        print(f"Log starting offset: {base_offset}", file=out)
        for line in _log_lines(content, deep, data, os.path.getsize(path) > _PROGRESS_BYTES and sys.stderr.isatty()):
            print(line, file=out)
    elif path.endswith(".index"):
        for i, (relative, position) in enumerate(_OFFSET_ENTRY.iter_unpack(_whole(content, _OFFSET_ENTRY.size))):
            if relative == 0 and i > 0:
                break  # the preallocated, unwritten rest (Kafka stops there too)
            print(f"offset: {base_offset + relative} position: {position}", file=out)
    elif path.endswith(".timeindex"):
        for i, (timestamp, relative) in enumerate(_TIME_ENTRY.iter_unpack(_whole(content, _TIME_ENTRY.size))):
            if relative == 0 and i > 0:
                break
            print(f"timestamp: {timestamp} offset: {base_offset + relative}", file=out)
    elif path.endswith(".txnindex"):
        for version, pid, first, last, lso in _TXN_ENTRY.iter_unpack(_whole(content, _TXN_ENTRY.size)):
            print(f"version: {version} producerId: {pid} firstOffset: {first} lastOffset: {last} "
                  f"lastStableOffset: {lso}", file=out)
    else:
        print(f"Ignoring unknown file {path}", file=out)


def _whole(content: bytes, entry_size: int) -> bytes:
    return content[: len(content) - len(content) % entry_size]


def _log_lines(content: bytes, deep: bool, data: bool, progress: bool) -> Iterator[str]:
    view = memoryview(content)
    bar = _Progress(len(view)) if progress else None
    pos = 0
    try:
        while pos + BATCH_HEADER_SIZE <= len(view):
            (base, length, epoch, magic, crc, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq,
             count) = HEADER.unpack_from(view, pos)  # fmt: skip
            end = pos + LOG_OVERHEAD + length
            if length <= 0 or end > len(view):
                break  # zeros after the last batch, or a batch cut by a crash (recovery drops it)
            valid = _native.crc32c(view[pos + ATTRIBUTES_OFFSET : end]) == crc
            last_seq = base_seq + last_delta if base_seq >= 0 else -1
            horizon = f"OptionalLong[{base_ts}]" if attributes & ATTR_DELETE_HORIZON else "OptionalLong.empty"
            ts_name = "LogAppendTime" if attributes & ATTR_TIMESTAMP_TYPE else "CreateTime"
            yield (f"baseOffset: {base} lastOffset: {base + last_delta} count: {count} baseSequence: {base_seq} "
                   f"lastSequence: {last_seq} producerId: {pid} producerEpoch: {pepoch} partitionLeaderEpoch: {epoch} "
                   f"isTransactional: {_bool(attributes & ATTR_TRANSACTIONAL)} "
                   f"isControl: {_bool(attributes & ATTR_CONTROL)} deleteHorizonMs: {horizon} position: {pos} "
                   f"{ts_name}: {max_ts} size: {end - pos} magic: {magic} "
                   f"compresscodec: {_CODECS[attributes & ATTR_COMPRESSION_MASK]} crc: {crc} isvalid: {_bool(valid)}")
            if deep:
                section = view[pos + BATCH_HEADER_SIZE : end]
                codec = attributes & ATTR_COMPRESSION_MASK
                if codec:
                    section = memoryview(_native.decompress(codec, section))
                yield from _record_lines(section, count, base, base_ts, max_ts, base_seq, attributes, ts_name, data)
            pos = end
            if bar is not None:
                bar.update(pos)
    finally:
        if bar is not None:
            bar.close()


def _record_lines(section: memoryview, count: int, base: int, base_ts: int, max_ts: int, base_seq: int,
                  attributes: int, ts_name: str, data: bool) -> Iterator[str]:
    log_append_time = bool(attributes & ATTR_TIMESTAMP_TYPE)
    pos = 0
    for _ in range(count):
        length, pos = p.read_varint(section, pos)
        end = pos + length
        at = pos + 1  # the record's attributes byte (unused)
        ts_delta, at = p.read_varlong(section, at)
        offset_delta, at = p.read_varint(section, at)
        key, at = _nullable(section, at)
        value, at = _nullable(section, at)
        n_headers, at = p.read_varint(section, at)
        header_keys = []
        for _ in range(n_headers):
            name, at = _nullable(section, at)
            _, at = _nullable(section, at)
            header_keys.append((name or b"").decode(errors="replace"))
        timestamp = max_ts if log_append_time else base_ts + ts_delta
        sequence = base_seq + offset_delta if base_seq >= 0 else -1
        line = (f"| offset: {base + offset_delta} {ts_name}: {timestamp} keySize: {_size(key)} "
                f"valueSize: {_size(value)} sequence: {sequence} headerKeys: [{','.join(header_keys)}]")
        if attributes & ATTR_CONTROL and key is not None and len(key) >= 4 and value is not None and len(value) >= 6:
            kind = struct.unpack_from(">h", key, 2)[0]
            epoch = struct.unpack_from(">i", value, 2)[0]
            line += f" endTxnMarker: {_CONTROL_TYPES.get(kind, str(kind))} coordinatorEpoch: {epoch}"
        elif data:
            if key is not None:
                line += f" key: {key.decode(errors='replace')}"
            line += f" payload: {'' if value is None else value.decode(errors='replace')}"
        yield line
        pos = end


def _nullable(section: memoryview, pos: int) -> tuple[bytes | None, int]:
    length, pos = p.read_varint(section, pos)
    if length < 0:
        return None, pos
    return bytes(section[pos : pos + length]), pos + length


def _size(field: bytes | None) -> int:
    return -1 if field is None else len(field)


def _bool(flag: object) -> str:
    return "true" if flag else "false"


class _Progress:
    """A rich progress bar over a segment's bytes, on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("dumping", total=total)
        self._progress.start()

    def update(self, done: int) -> None:
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        self._progress.stop()
