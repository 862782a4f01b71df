"""Log cleaner benchmark: throughput and memory of one pass, and produce latency with the cleaner
running vs idle.

    python bench/cleaner.py throughput [--keys 100000 --versions 20 --value-size 100 --codec 0]
    python bench/cleaner.py latency [--mb 60 --seconds 5]

throughput: fills a PartitionLog in a temporary directory with keys x versions records (batches
of 100, keys interleaved), rolls it, and runs LogCleaner.clean_now until it is clean.  Prints the
dirty MB/s and keys/s of the offset map build, the MB/s of the whole pass (map + rewrite of every
segment), the offset map's size, and the process's peak RSS before and after cleaning.

latency: starts `pyk serve` (one shard), fills a compacted topic with --mb of superseded
records, then times sequential acks=1 produces (one message, wait for its ack) to another topic
of the same shard: first for --seconds with the cleaner idle, then while the cleaner compacts
the big topic (started by lowering its min.cleanable.dirty.ratio), until the pass is logged.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyk.log.cleaner import CleanerConfig, LogCleaner  # noqa: E402
from pyk.log.config import LogConfig  # noqa: E402
from pyk.log.manager import LogManager  # noqa: E402
from tests.ref.builder import Record, build_batch  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        manager = LogManager([tmp], LogConfig())
        config = LogConfig().with_overrides({"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
        plog = manager.create("bench", 0, config)
        value = b"v" * args.value_size
        now = int(time.time() * 1000)
        batch_records = 100
        started = time.monotonic()
        for _ in range(args.versions):
            for k0 in range(0, args.keys, batch_records):
                recs = [Record(value=value, key=b"key-%010d" % k, timestamp=now)
                        for k in range(k0, min(k0 + batch_records, args.keys))]
                plog.append(memoryview(bytearray(build_batch(recs, base_timestamp=now, compression=args.codec))), now)
        plog.roll()
        size = sum(s.size for s in plog.segments)
        print(f"filled {args.keys} keys x {args.versions} versions: {size / 2**20:.1f} MB in "
              f"{len(plog.segments)} segments ({time.monotonic() - started:.1f}s); RSS before cleaning "
              f"{_rss_mb():.0f} MB")
        cleaner = LogCleaner(manager, CleanerConfig(dedupe_buffer_size=args.dedupe_buffer))
        passes = []
        while True:
            stats = cleaner.clean_now(plog)
            if stats is None:
                break
            passes.append(stats)
        mb = 2**20
        dirty = sum(s.dirty_bytes for s in passes)
        map_s = sum(s.map_seconds for s in passes)
        keys = sum(s.map_records for s in passes)
        total_s = sum(s.seconds for s in passes)
        print(f"passes: {len(passes)}; offset map {max(s.map_bytes for s in passes) / mb:.1f} MB")
        print(f"offset map build: {dirty / mb:.1f} MB dirty in {map_s:.2f}s = {dirty / mb / map_s:.1f} MB/s, "
              f"{keys / map_s:,.0f} keys/s")
        print(f"whole cleaning: {dirty / mb:.1f} MB of dirty log in {total_s:.2f}s = {dirty / mb / total_s:.1f} MB/s "
              f"(read {sum(s.bytes_read for s in passes) / mb:.1f} MB, wrote {sum(s.bytes_written for s in passes) / mb:.1f} MB)")
        print(f"peak RSS after cleaning: {_rss_mb():.0f} MB")
        manager.close()


def _percentiles(samples: list[float]) -> str:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(len(s) * q))] * 1000  # noqa: E731
    return f"n={len(s)} p50={pick(0.5):.2f} ms p99={pick(0.99):.2f} ms max={s[-1] * 1000:.2f} ms"


def latency(args: argparse.Namespace) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    from tests.helpers import BrokerProcess, confluent_admin, create_topic

    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp), {"log.cleaner.backoff.ms": "200"}, shards=1).start()
        try:
            create_topic(broker.bootstrap, "big", 1, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.99",
                                                      "segment.bytes": str(8 * 2**20)})
            create_topic(broker.bootstrap, "other", 1)
            filler = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.num.messages": 5000})
            value = b"x" * 200
            count = args.mb * 2**20 // 230
            for i in range(count):
                while True:
                    try:
                        filler.produce("big", key=b"key-%d" % (i % 20000), value=value, partition=0)
                        break
                    except BufferError:
                        filler.poll(0.05)
            filler.flush(60)
            print(f"filled big with {count} records ({args.mb} MB)")
            p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "1"})
            p.produce("other", value=b"warm-up", partition=0)
            p.flush(10)

            def sample() -> float:
                start = time.monotonic()
                p.produce("other", value=b"y" * 100, partition=0)
                p.flush(10)
                return time.monotonic() - start

            idle = []
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                idle.append(sample())
            admin = confluent_admin(broker.bootstrap)
            resource_ = ConfigResource(ConfigResource.Type.TOPIC, "big", incremental_configs=[
                ConfigEntry("min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET)])
            before = broker.log_text().count("cleaned big-0")
            admin.incremental_alter_configs([resource_])[resource_].result(20)
            busy = []
            started = time.monotonic()
            while broker.log_text().count("cleaned big-0") == before and time.monotonic() - started < 300:
                busy.append(sample())
            print(f"produce latency, cleaner idle:    {_percentiles(idle)}")
            print(f"produce latency, cleaner running: {_percentiles(busy)} (pass took ~{time.monotonic() - started:.1f}s)")
            for line in broker.log_text().splitlines():
                if "cleaned big-0" in line:
                    print(line.split("pyk.log.cleaner: ", 1)[-1])
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--keys", type=int, default=100_000)
    t.add_argument("--versions", type=int, default=10)
    t.add_argument("--value-size", type=int, default=100)
    t.add_argument("--codec", type=int, default=0, help="0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd")
    t.add_argument("--dedupe-buffer", type=int, default=134217728, help="log.cleaner.dedupe.buffer.size")
    lat = sub.add_parser("latency")
    lat.add_argument("--mb", type=int, default=60)
    lat.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    throughput(args) if args.mode == "throughput" else latency(args)


if __name__ == "__main__":
    main()
