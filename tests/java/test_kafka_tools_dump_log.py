"""Kafka's DumpLogSegments reads the files pyk writes: `.log` (plain, compressed with each codec,
transactional with a commit and an abort), `.index` and `.timeindex` (checked entry by entry
against the log, and with --index-sanity-check) and `.txnindex` (the aborted transaction)."""

from __future__ import annotations

import re
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import pytest

from tests.helpers import BrokerProcess, Rec, confluent_produce, create_topic, wait_for
from tests.kafka import run_java

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 60
# Anything DumpLogSegments says about a file it could not read, or an index entry that does not
# match the log ("Index offset mismatch", "not found in the log", "out of order", isvalid: false).
TROUBLE = re.compile(r"(?i)error|exception|mismatch|not found|out of order|non-?consecutive|corrupt|isvalid: false"
                     r"|failed|invalid")


def _transaction(bootstrap: str, topic: str, tid: str, commit: bool) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    p.init_transactions()
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, b"%s-%d" % (tid.encode(), i), partition=0)
    p.flush()
    (p.commit_transaction if commit else p.abort_transaction)()


@pytest.fixture
def written(broker: BrokerProcess, topic: str) -> tuple[Path, list[bytes]]:
    """A partition of several small segments with every kind of batch; its directory and the
    values of its records."""
    # Small segments and a dense index, so there are closed segments and many index entries.
    create_topic(broker.bootstrap, topic, partitions=1, config={"segment.bytes": "4096", "index.interval.bytes": "256"})
    values: list[bytes] = []
    for codec in CODECS:
        records = [Rec(key=b"k%d" % i, value=b"%s-%04d-" % (codec.encode(), i) + sha256(b"%d" % i).hexdigest().encode(),
                       partition=0)
                   for i in range(PER_CODEC)]
        confluent_produce(broker.bootstrap, topic, records, **{"compression.type": codec, "linger.ms": 20, "batch.num.messages": 10})
        values += [r.value for r in records if r.value is not None]
    _transaction(broker.bootstrap, topic, f"{topic}-commit", commit=True)
    _transaction(broker.bootstrap, topic, f"{topic}-abort", commit=False)
    values += [b"%s-%s-%d" % (topic.encode(), kind, i) for kind in (b"commit", b"abort") for i in range(3)]
    pdir = broker.partition_dir(topic, 0)
    wait_for(lambda: any(f.stat().st_size > 0 for f in pdir.glob("*.txnindex")), what="the abort in a .txnindex")
    return pdir, values


def test_dump_log_segments_reads_pyk_files(written: tuple[Path, list[bytes]]) -> None:
    pdir, values = written
    logs = sorted(pdir.glob("*.log"))
    assert len(logs) > 3, "the partition should span several segments"
    files = sorted(f for f in pdir.iterdir() if f.suffix in (".log", ".index", ".timeindex", ".txnindex"))
    dump = run_java("kafka.tools.DumpLogSegments", "--deep-iteration", "--print-data-log",
                    "--files", ",".join(map(str, files))).stdout
    trouble = [line for line in dump.splitlines() if TROUBLE.search(line.split(" payload: ")[0])]
    assert not trouble, "\n".join(trouble[:20])

    payloads = re.findall(r"\| offset: \d+ .* payload: (\S+)$", dump, re.MULTILINE)
    assert sorted(payloads) == sorted(v.decode() for v in values)
    codecs = set(re.findall(r"compresscodec: (\w+)", dump))
    assert {"gzip", "snappy", "zstd"} <= codecs, codecs
    markers = re.findall(r"endTxnMarker: (\w+)", dump)
    assert markers == ["COMMIT", "ABORT"]
    # Each segment's offset index and time index were dumped and checked against its log.
    assert dump.count("Dumping ") == len(files)
    assert len(re.findall(r"^offset: \d+ position: \d+$", dump, re.MULTILINE)) >= len(logs)
    assert len(re.findall(r"^timestamp: \d+ offset: \d+$", dump, re.MULTILINE)) >= len(logs)
    aborted = re.findall(r"^version: 0 producerId: (\d+) firstOffset: (\d+) lastOffset: (\d+)", dump, re.MULTILINE)
    assert len(aborted) == 1, dump[-2000:]

    # The sanity check reads an index to its file's end, so it holds for closed segments only, on
    # Kafka too: an active segment's preallocated .timeindex ends in zeros, which Kafka's own
    # DumpLogSegments reports as "Corrupt time index found" on a live Kafka partition as well.
    active = logs[-1].stem
    indexes = [str(f) for f in files if f.suffix in (".index", ".timeindex") and f.stem != active]
    sanity = run_java("kafka.tools.DumpLogSegments", "--index-sanity-check", "--files", ",".join(indexes)).stdout
    assert sanity.count("passed sanity check") == len(indexes), sanity


@pytest.mark.parametrize("flags", [(), ("--deep-iteration",), ("--deep-iteration", "--print-data-log")])
def test_pyk_dump_log_prints_what_kafkas_tool_prints(written: tuple[Path, list[bytes]], flags: tuple[str, ...]) -> None:
    """`pyk dump-log` is kafka-dump-log.sh for pyk's files: the same lines, shallow or deep."""
    pdir, _ = written
    files = ",".join(str(f) for f in sorted(pdir.iterdir()) if f.suffix in (".log", ".index", ".timeindex", ".txnindex"))
    kafka = run_java("kafka.tools.DumpLogSegments", *flags, "--files", files).stdout
    pyk = subprocess.run([sys.executable, "-m", "pyk", "dump-log", *flags, "--files", files], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    assert pyk.splitlines() == kafka.splitlines()
