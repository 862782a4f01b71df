"""Transactional producer throughput and commit latency, side by side with an idempotent one.

    python bench/transactions.py [-b HOST:PORT | --start-broker] [-n MESSAGES] [-s SIZE] [-p PARTITIONS]

confluent-kafka (librdkafka), one producer, messages of SIZE bytes round-robin over PARTITIONS
partitions of a fresh topic:
  * idempotent: enable.idempotence=true, no transactions, one flush at the end;
  * transactional, committing every 100 / 1000 / 10000 messages: begin, produce N,
    commit_transaction (which flushes, then EndTxn; the coordinator writes PrepareCommit, answers,
    sends the markers and writes CompleteCommit).
Prints messages/s for each and the p50/p99 of commit_transaction's wall time per mode (measured
after a flush, so it is the EndTxn round trip, not the delivery of the last messages).  Noisy
shared machine: compare the ratios within one run (bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from pyk.bench.localbroker import LocalBroker  # noqa: E402

COMMIT_EVERY = (100, 1000, 10000)


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"bench-txn-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def _produce(p: Producer, topic: str, value: bytes, count: int, partitions: int, start: int) -> None:
    for i in range(count):
        while True:
            try:
                p.produce(topic, value, partition=(start + i) % partitions)
                break
            except BufferError:
                p.poll(0.001)  # local queue full: serve delivery reports, retry at once
        if i % 1000 == 0:
            p.poll(0)


def idempotent(bootstrap: str, topic: str, n: int, size: int, partitions: int) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    value = b"x" * size
    started = time.perf_counter()
    _produce(p, topic, value, n, partitions, 0)
    p.flush(120)
    return n / (time.perf_counter() - started)


def transactional(bootstrap: str, topic: str, n: int, size: int, partitions: int,
                  every: int) -> tuple[float, list[float]]:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "linger.ms": 5})
    p.init_transactions(30)
    value = b"x" * size
    commits: list[float] = []
    started = time.perf_counter()
    sent = 0
    while sent < n:
        count = min(every, n - sent)
        p.begin_transaction()
        _produce(p, topic, value, count, partitions, sent)
        p.flush(60)  # the commit's own latency, not the time to deliver the last batches
        t0 = time.perf_counter()
        p.commit_transaction(60)
        commits.append((time.perf_counter() - t0) * 1000)
        sent += count
    return n / (time.perf_counter() - started), commits


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-b", "--bootstrap")
    ap.add_argument("--start-broker", action="store_true")
    ap.add_argument("-n", "--messages", type=int, default=200_000)
    ap.add_argument("-s", "--size", type=int, default=100)
    ap.add_argument("-p", "--partitions", type=int, default=4)
    args = ap.parse_args()
    broker = LocalBroker().start() if args.start_broker or not args.bootstrap else None
    bootstrap = broker.bootstrap if broker is not None else args.bootstrap
    try:
        print(f"{args.messages} messages of {args.size} B over {args.partitions} partitions, {bootstrap}")
        print(f"{'mode':<28} {'msgs/s':>10} {'vs idempotent':>14} {'commits':>8} {'commit p50 ms':>14} {'p99 ms':>8}")
        idempotent(bootstrap, _topic(bootstrap, args.partitions), args.messages // 10, args.size,
                   args.partitions)  # warm-up: connections, first segments, page cache
        base = idempotent(bootstrap, _topic(bootstrap, args.partitions), args.messages, args.size, args.partitions)
        print(f"{'idempotent, no transactions':<28} {base:>10.0f} {1.0:>14.2f} {'-':>8} {'-':>14} {'-':>8}")
        for every in COMMIT_EVERY:
            rate, commits = transactional(bootstrap, _topic(bootstrap, args.partitions), args.messages, args.size,
                                          args.partitions, every)
            print(f"{f'transactional, commit/{every}':<28} {rate:>10.0f} {rate / base:>14.2f} {len(commits):>8} "
                  f"{statistics.median(commits):>14.1f} {_pct(commits, 0.99):>8.1f}")
    finally:
        if broker is not None:
            broker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
