"""pyk's built-in web console: overview, topics, message browser, consumer groups, transactions.

Served by the orchestrator process on `console.listener` (empty: off), in the orchestrator's
event loop, by aiohttp with Jinja2 templates; htmx does the page actions and uPlot draws the
charts.  The console is a Kafka client of its own broker (pyk.console.kafka), like Redpanda
Console, so it shows exactly what any client would see and knows nothing of shards' insides.
The overview's charts are the broker's own numbers: the shards' metrics snapshots that the
orchestrator collects for its Prometheus endpoint, taken in-process (pyk.console.sampler)
rather than by scraping and parsing the endpoint, which may be off.

The browser libraries (static/vendor: htmx, uPlot) are committed built files, not fetched at
install or run time: a plain `pip install` must give a working console with no Node.js and no
network (no CDN, and machines that run brokers often have no npm), and the files are small
(about 100 KB).  They come from the npm registry at the versions of ci/console/package-lock.json
through ci/console-assets.sh, which also checks (`--check`) that the committed files match it.

The console reaches the broker on its inter-broker listener with the broker's own TLS and SASL
credentials (pyk.console.kafka), so it works on a secured broker and acts as the broker's
principal, normally a super user: whoever reaches the console may do what that principal may.
The console has no login: it listens on loopback by default, refuses changes that do not come
from its own pages (CSRF) and, on loopback, requests for other host names (DNS rebinding); put it
behind an authenticating proxy before listening elsewhere.

A listener that cannot be bound (port taken) is logged and the broker runs without a console:
the console is an operator's convenience and must never stop the broker from serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web

from pyk.config import ServerConfig
from pyk.console.app import make_app
from pyk.console.kafka import CLIENT_ID, ConsoleClient, librdkafka_security
from pyk.console.sampler import Sampler, SnapshotSource
from pyk.server.security.inter_broker import InterBrokerClient

log = logging.getLogger("pyk.console")


class Console:
    """The console's HTTP server, Kafka client and sampler; started and stopped with the
    orchestrator (`serve_alongside`)."""

    def __init__(self, config: ServerConfig, metrics: SnapshotSource) -> None:
        host, _, port = config["console.listener"].rpartition(":")
        self.host, self.port = host.strip("[]") or "0.0.0.0", int(port)
        listener = config.inter_broker_listener
        broker = InterBrokerClient(config)
        self.client = ConsoleClient(f"{listener.host}:{listener.port}",
                                    lambda host, port: broker.connect(host, port, CLIENT_ID),
                                    librdkafka_security(config, broker))
        self.sampler = Sampler(metrics)
        loopback = self.host in ("localhost", "::1") or self.host.startswith("127.")
        self.runner = web.AppRunner(make_app(self.client, self.sampler, config.node_id, loopback), access_log=None)

    async def start(self) -> bool:
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, self.host, self.port).start()
        except OSError as exc:
            log.warning("console not started: cannot listen on %s:%d (%s)", self.host, self.port, exc.strerror)
            await self.runner.cleanup()
            return False
        self.sampler.start()
        log.info("console listening on http://%s:%d/", self.host, self.port)
        return True

    async def stop(self) -> None:
        await self.sampler.stop()
        await self.runner.cleanup()
        self.client.close()

    async def serve_alongside(self, main: Awaitable[int]) -> int:
        """Runs `main` (the orchestrator) with the console beside it; returns main's result."""
        started = await self.start()
        try:
            return await main
        finally:
            if started:
                await asyncio.shield(self.stop())
