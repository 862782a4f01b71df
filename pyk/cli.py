"""`pyk` command line: `pyk serve` runs a broker in the foreground.

Exit codes: 0 clean stop, 2 bad configuration or arguments, 1 anything else at start-up.
"""

from __future__ import annotations

import argparse
import logging
import os

from pyk import __version__
from pyk.logsetup import setup_logging

log = logging.getLogger("pyk")


def _serve(args: argparse.Namespace) -> int:
    from pyk.config import ConfigError, ServerConfig
    from pyk.server.security.listener import check as check_security

    try:
        config = ServerConfig.load(args.config, args.override)
        if config["log.format"] != "text":
            setup_logging(args.log_level, config["log.format"])
        check_security(config)  # TLS files, JAAS lines, JWKS: before any shard starts
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2

    import uvloop

    from pyk.server.engine import EngineUnavailable, resolve
    from pyk.server.shard import Orchestrator

    try:
        # Once here, so that io.engine=io_uring fails before any shard starts and `auto` says
        # once (not once per shard) that it falls back; the shards resolve it the same way.
        engine = resolve(config["io.engine"], announce=True)
    except EngineUnavailable as exc:
        log.error("start-up failed: %s", exc)
        return 1

    os.environ["PYK_LOG_LEVEL"] = args.log_level  # the shards log at the same level, in the same format
    os.environ["PYK_LOG_FORMAT"] = config["log.format"]
    try:
        orchestrator = Orchestrator(config)
    except (OSError, ValueError) as exc:
        log.error("start-up failed: %s", exc)
        return 1
    log.info("pyk %s starting (%s), io engine %s", __version__, ", ".join(str(lst) for lst in config.advertised_listeners),
             engine)
    run = orchestrator.run()
    if config["console.listener"]:
        from pyk.console import Console

        run = Console(config, orchestrator).serve_alongside(run)
    return uvloop.run(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyk", description="Kafka-protocol event streaming broker")
    parser.add_argument("--version", action="version", version=f"pyk {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a broker in the foreground")
    serve.add_argument("config", nargs="?", help="a Kafka-style server.properties file")
    serve.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="set a config key (repeatable)"
    )
    from pyk.bench.cli import add_parser as add_bench_parser
    from pyk.bench.cli import run as run_bench
    from pyk.tools import acls, cluster, configs, dump_log, groups, kcat, quotas, shards, topics, users

    add_bench_parser(sub)
    topics.add_parser(sub)
    groups.add_parser(sub)
    cluster.add_parser(sub)
    users.add_parser(sub)
    acls.add_parser(sub)
    configs.add_parser(sub)
    quotas.add_parser(sub)
    dump_log.add_parser(sub)
    kcat.add_parsers(sub)
    shards.add_parser(sub)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "topics":
        return topics.run(args)
    if args.command == "groups":
        return groups.run(args)
    if args.command == "cluster":
        return cluster.run(args)
    if args.command == "users":
        return users.run(args)
    if args.command == "acls":
        return acls.run(args)
    if args.command == "configs":
        return configs.run(args)
    if args.command == "quotas":
        return quotas.run(args)
    if args.command == "dump-log":
        return dump_log.run(args)
    if args.command == "produce":
        return kcat.produce(args)
    if args.command == "consume":
        return kcat.consume(args)
    if args.command == "shards":
        return shards.run(args)
    parser.error(f"unknown command {args.command}")
    return 2
