"""`pyk` command line: `pyk serve` runs a broker in the foreground.

Exit codes: 0 clean stop, 2 bad configuration or arguments, 1 anything else at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pyk import __version__

log = logging.getLogger("pyk")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _serve(args: argparse.Namespace) -> int:
    from pyk.config import ConfigError, ServerConfig

    try:
        config = ServerConfig.load(args.config, args.override)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2

    from pyk.server.broker import Broker

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is a dependency; plain asyncio only where it cannot install
        runner = asyncio.run

    async def main() -> int:
        broker = Broker(config)
        await broker.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, broker.request_stop)
        log.info("pyk %s started (%s)", __version__, ", ".join(str(lst) for lst in config.advertised_listeners))
        await broker.serve_forever()
        log.info("shutting down")
        await broker.stop()
        return 0

    try:
        return runner(main())
    except OSError as exc:
        log.error("start-up failed: %s", exc)
        return 1


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

    add_bench_parser(sub)
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        return run_bench(args)
    parser.error(f"unknown command {args.command}")
    return 2
