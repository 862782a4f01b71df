"""`pyk bench`: argument parsing and the command's flow (exit codes: 0 done, 2 bad arguments,
1 the run failed).  DESCRIPTION is what `pyk bench --help` shows users."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

from pyk.bench.workload import CLIENTS, Workload, parse_props

DESCRIPTION = """\
Benchmark any Kafka-protocol broker (pyk, Apache Kafka, ...): throughput, latency percentiles,
broker and client CPU, as a table, JSON (--json) or plots (--plot).

Defaults: bootstrap 127.0.0.1:9092, a new topic with 1 partition, 100-byte values, 10 seconds,
the built-in pipelined client (--client librdkafka for confluent-kafka's behaviour).

examples:
  pyk bench produce -s 100 -p 8 --acks 1 -d 10
  pyk bench produce --client librdkafka --codec lz4 --json out.json --plot out.png
  pyk bench consume --topic orders
  pyk bench e2e -r 10000 -Y fetch.wait.max.ms=10
  pyk bench sweep --sweep linger.ms=0,1,5,20 --workload e2e -r 50000 --client librdkafka
  pyk bench sweep --sweep log.flush.interval.messages=1,100,10000 --start-broker --acks all

`pyk bench MODE --help` lists every option of a mode.
"""
PLOT_NEEDS = "--plot needs matplotlib: pip install 'pyk[plot]'"


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--bootstrap", "-b", default="127.0.0.1:9092", help="host:port[,host:port] of a Kafka-protocol broker")
    g.add_argument("--topic", "-t", help="topic (default: a new pyk-bench-<mode>-<random> topic)")
    g.add_argument("--partitions", "-p", type=int, default=1, help="partitions of a topic the bench creates (default 1)")
    g.add_argument("--replication-factor", type=int, default=1)
    g.add_argument("--no-create", action="store_true", help="do not create the topic (it must exist)")
    g.add_argument("--topic-config", action="append", metavar="KEY=VALUE", help="topic config for CreateTopics")
    g.add_argument("--broker-pid", action="append", default=[], metavar="PID[,PID]",
                   help="broker process(es) whose CPU to report (their children count too)")
    g.add_argument("--start-broker", action="store_true",
                   help="start a local `pyk serve` on a free port and an empty log dir for the run")
    g.add_argument("--broker-override", action="append", metavar="KEY=VALUE",
                   help="--override for the broker started by --start-broker")
    g = p.add_argument_group("load")
    g.add_argument("--size", "-s", type=int, default=100, help="message value size in bytes (default 100)")
    g.add_argument("--acks", choices=("0", "1", "all", "-1"), help="producer acks (default: the client's, all)")
    g.add_argument("--codec", "--compression", dest="codec", choices=("none", "gzip", "snappy", "lz4", "zstd"),
                   help="producer compression.type")
    g.add_argument("--rate", "-r", type=float, default=0.0, help="messages per second, whole run (default: unlimited)")
    g.add_argument("--duration", "-d", type=float, default=10.0, help="seconds (0: until --messages; default 10)")
    g.add_argument("--messages", "-n", type=int, default=0, help="stop after this many messages")
    g.add_argument("-X", dest="xprops", action="append", metavar="KEY=VALUE", help="producer property (librdkafka name)")
    g.add_argument("-Y", dest="yprops", action="append", metavar="KEY=VALUE", help="consumer property (librdkafka name)")
    g.add_argument("--client", choices=CLIENTS, default="raw",
                   help="raw: the bench's pipelined generator (throughput); librdkafka: confluent-kafka (behaviour)")
    g.add_argument("--procs", type=int, default=1, help="raw producer processes (default 1)")
    g.add_argument("--connections", type=int, default=1, help="raw producer connections per broker node per process")
    g.add_argument("--from", dest="from_", choices=("earliest", "latest"), default="earliest",
                   help="consume: where to start")
    g.add_argument("--idle-timeout", type=float, default=5.0, help="e2e: wait this long for stragglers")
    g = p.add_argument_group("output")
    g.add_argument("--interval", type=float, default=1.0, help="seconds per timeline tick / progress line")
    g.add_argument("--warmup", type=float, default=0.0, help="seconds left out of the totals")
    g.add_argument("--json", metavar="FILE", help="write the settings, totals and timeline as JSON")
    g.add_argument("--plot", metavar="FILE.png", help="plot throughput and latency over time (sweep: vs the value)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds `bench` and its subcommands to the `pyk` subparsers."""
    bench = sub.add_parser("bench", help="benchmark a Kafka-protocol broker (produce, consume, e2e, sweep)",
                           description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = bench.add_subparsers(dest="bench_mode", required=True)
    for mode, text in (("produce", "produce as fast as possible or at --rate; latency = due -> acknowledged"),
                       ("consume", "read a topic from the start (filled first if empty); msgs/s"),
                       ("e2e", "produce at --rate while consuming; latency = due -> consumed")):
        _add_common(modes.add_parser(mode, help=text, description=text))
    sweep = modes.add_parser("sweep", help="run a workload once per value of one setting")
    _add_common(sweep)
    sweep.add_argument("--sweep", required=True, metavar="[TARGET:]KEY=V1,V2,...",
                       help="e.g. linger.ms=0,1,5,20; consumer:fetch.wait.max.ms=0,10,100; "
                            "log.segment.bytes=... or broker:num.shards=1,2 (with --start-broker); topic:KEY=...")
    sweep.add_argument("--workload", choices=("produce", "consume", "e2e"), default="produce")
    sweep.add_argument("--passes", type=int, default=1,
                       help="run every value this many times, interleaved; report each value's median run")
    return bench


def _workload(args: argparse.Namespace, mode: str) -> Workload:
    xprops = parse_props(args.xprops, "-X")
    yprops = parse_props(args.yprops, "-Y")
    if args.acks is not None:
        xprops.setdefault("acks", args.acks)
    if args.codec is not None:
        xprops.setdefault("compression.type", args.codec)
    if args.client == "librdkafka" and mode != "produce":
        # librdkafka reads its whole backlog per fetch anyway; these keep it from stopping early.
        yprops.setdefault("auto.offset.reset", "earliest")
    topic = args.topic or f"pyk-bench-{mode}-{uuid.uuid4().hex[:8]}"
    return Workload(
        mode=mode, bootstrap=args.bootstrap, topic=topic, partitions=args.partitions,
        replication=args.replication_factor, size=args.size, rate=args.rate, duration=args.duration,
        messages=args.messages, producer_props=xprops, consumer_props=yprops,
        topic_configs=parse_props(args.topic_config, "--topic-config"), client=args.client, procs=args.procs,
        connections=args.connections, interval=args.interval, warmup=args.warmup, idle_timeout=args.idle_timeout,
        create_topic=not args.no_create, from_start=args.from_ == "earliest", progress=not args.quiet,
    )  # fmt: skip


def _pids(values: list[str]) -> list[int]:
    out = []
    for v in values:
        out += [int(x) for x in v.split(",") if x.strip()]
    return out


def run(args: argparse.Namespace) -> int:
    """Runs the parsed `pyk bench ...` command; returns the exit code."""
    from pyk.bench import report

    mode = args.workload if args.bench_mode == "sweep" else args.bench_mode
    try:
        w = _workload(args, mode)
        pids = _pids(args.broker_pid)
        broker_overrides = parse_props(args.broker_override, "--broker-override")
    except ValueError as exc:
        print(f"pyk bench: {exc}", file=sys.stderr)
        return 2
    if args.plot and not report.can_plot():
        print(f"pyk bench: {PLOT_NEEDS}", file=sys.stderr)
        return 2

    broker = None
    if args.start_broker:
        from pyk.bench.localbroker import LocalBroker

        broker = LocalBroker(broker_overrides)
    try:
        if args.bench_mode == "sweep":
            return _sweep(args, w, broker, pids)
        if broker is not None:
            broker.start()
            w.bootstrap = broker.bootstrap
            pids += broker.pids
        from pyk.bench.runner import run as run_workload

        outcome = run_workload(w, pids)
        report.print_outcome(outcome, sys.stdout)
        if args.json:
            report.write_json(args.json, outcome.to_json())
        if args.plot:
            report.plot_timeline(outcome, args.plot)
        return 0 if outcome.result.records or not outcome.result.errors else 1
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"pyk bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if broker is not None:
            broker.close()


def _sweep(args: argparse.Namespace, w: Workload, broker: Any, pids: list[int]) -> int:
    from pyk.bench import report
    from pyk.bench.sweep import route, run_sweep

    try:
        route(args.sweep)
    except ValueError as exc:
        print(f"pyk bench: {exc}", file=sys.stderr)
        return 2

    def on_point(value: str, outcome: Any) -> None:
        if not args.quiet:
            r = outcome.result
            print(f"# {args.sweep.split('=')[0]}={value}: {r.msgs_per_s:,.0f} msgs/s, p99 "
                  f"{report._fmt(r.latency_ms['p99'], '.2f')} ms", file=sys.stderr)

    key, points, runs = run_sweep(w, args.sweep, broker, pids, on_point, passes=args.passes)
    if args.passes > 1:
        rows = [[v, *report.row(o), report.spread(runs[v])] for v, o in points]
        report.table((key, *report.COLUMNS, "msgs/s min-max"), rows, sys.stdout)
        print(f"median run of {args.passes} passes per value (by msgs/s)")
    else:
        report.table((key, *report.COLUMNS), [[v, *report.row(o)] for v, o in points], sys.stdout)
    for note in sorted({n for _, o in points for n in o.notes}):
        print(f"note: {note}")
    if args.json:
        report.write_json(args.json, {
            "sweep": args.sweep, "key": key, "workload": w.describe(),
            "passes": args.passes,
            "points": [{"value": v, **o.to_json(), "runs": [r.result.to_json() for r in runs[v]]} for v, o in points],
        })  # fmt: skip
    if args.plot:
        report.plot_sweep(key, points, args.plot)
    return 0
