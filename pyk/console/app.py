"""The console's web side: aiohttp routes rendering Jinja2 templates, htmx for the actions.

Pages are server-rendered HTML; an action (create a topic, reset offsets, abort a transaction)
is an htmx POST whose answer is the fragment to swap in, so the browser runs no application
code but htmx, uPlot and the few lines of static/console.js that feed the charts.  A Kafka
error is shown in the page (a fragment with the error's name and message), never as a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from pyk import __version__
from pyk.client import BrokerError
from pyk.console.kafka import LATEST, ConsoleClient, browse
from pyk.console.sampler import Sampler

log = logging.getLogger("pyk.console")

BROWSE_LIMIT = 50  # messages per page of the browser
MAX_LIMIT = 1000  # most messages one page may ask for (?limit=)
TAIL_LIMIT = 200  # messages one live-tail poll may add
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT: web.AppKey[ConsoleClient] = web.AppKey("client", ConsoleClient)
SAMPLER: web.AppKey[Sampler] = web.AppKey("sampler", Sampler)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
LOOPBACK: web.AppKey[bool] = web.AppKey("loopback", bool)  # listening on a loopback address only
NODE_ID: web.AppKey[int] = web.AppKey("node_id", int)  # this host's first node (shard i is node NODE_ID + i)


def _time(ms: int | None) -> str:
    if ms is None or ms < 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _size(n: int | None) -> str:
    if n is None or n < 0:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# DescribeConfigs' config_source values (Kafka's DescribeConfigsResponse.ConfigSource).
_CONFIG_SOURCES = {1: "topic", 2: "broker (dynamic)", 3: "cluster default (dynamic)", 4: "broker (static)",
                   5: "default"}


def _ms(text: str) -> int:
    """An ISO-8601 time as epoch ms; a time without a zone is UTC (the page says so)."""
    when = datetime.fromisoformat(text)
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def make_app(client: ConsoleClient, sampler: Sampler, node_id: int, loopback: bool) -> web.Application:
    env = jinja2.Environment(loader=jinja2.PackageLoader("pyk.console", "templates"),
                             autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    env.filters["time"] = _time
    env.filters["size"] = _size
    env.filters["config_source"] = lambda source: _CONFIG_SOURCES.get(source, "default")
    env.globals["version"] = __version__
    app = web.Application(middlewares=[_guard, _errors])
    app[LOOPBACK] = loopback
    app[CLIENT] = client
    app[SAMPLER] = sampler
    app[NODE_ID] = node_id
    app[TEMPLATES] = env
    app.router.add_get("/", overview)
    app.router.add_get("/api/series", series)
    app.router.add_get("/topics", topics)
    app.router.add_post("/topics", create_topic)
    app.router.add_get("/topics/{name}", topic)
    app.router.add_post("/topics/{name}/partitions", add_partitions)
    app.router.add_post("/topics/{name}/delete", delete_topic)
    app.router.add_get("/topics/{name}/messages", messages)
    app.router.add_get("/topics/{name}/tail", tail)
    app.router.add_get("/groups", groups)
    app.router.add_get("/groups/{group}", group)
    app.router.add_post("/groups/{group}/reset", reset_offsets)
    app.router.add_get("/transactions", transactions)
    app.router.add_post("/transactions/{id}/abort", abort_transaction)
    app.router.add_static("/static", str(resources.files("pyk.console") / "static"))
    return app


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    page = request.app[TEMPLATES].get_template(template).render(request=request, **context)
    return web.Response(text=page, content_type="text/html")


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The console has no login, so it defends what a browser can be tricked into.

    * A change (any POST) must carry htmx's `HX-Request` header: another site's page cannot send
      a custom header cross-origin without a CORS preflight, which the console never grants, so
      a forged form post cannot delete a topic (CSRF).
    * On a loopback listener (the default), the Host header must name a loopback address, so a
      hostile DNS name rebound to 127.0.0.1 does not make its page same-origin with the console.
    """
    if request.method != "GET" and not is_htmx(request):
        raise web.HTTPForbidden(text="changes are made from the console's pages (HX-Request header missing)")
    if request.app[LOOPBACK] and (request.url.host or "").strip("[]") not in _LOOPBACK_NAMES:
        raise web.HTTPForbidden(text="this console answers on loopback addresses only")
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A broker that refuses or cannot be reached is shown in the page: an htmx request gets the
    error fragment in place of its answer (status 200, as htmx swaps only 2xx answers)."""
    try:
        return await handler(request)
    except (BrokerError, ConnectionError, OSError, ValueError, KeyError) as exc:
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BrokerError) else str(exc)
        if is_htmx(request):
            return render(request, "error.html", error=text)
        return render(request, "page_error.html", error=text)


def _client(request: web.Request) -> ConsoleClient:
    return request.app[CLIENT]


# Overview -------------------------------------------------------------------------------------------
async def overview(request: web.Request) -> web.Response:
    client = _client(request)
    md = await client.run(client.metadata)
    leaders = client.leaders(md)
    first = min((b["node_id"] for b in md["brokers"]), default=0)
    sampler, base = request.app[SAMPLER], request.app[NODE_ID]
    last = sampler.intervals[-1] if sampler.intervals else None
    # this host's shards, from their last metrics snapshot (other hosts' nodes show "-")
    connections = {base + shard: snap.connections for shard, snap in sampler.last.items()}
    cpu = {base + shard: percent for shard, percent in last.cpu_percent.items()} if last else {}
    nodes = [{**b, "shard": b["node_id"] - first, "leaders": sum(1 for n in leaders.values() if n == b["node_id"]),
              "connections": connections.get(b["node_id"]), "cpu": cpu.get(b["node_id"])}
             for b in sorted(md["brokers"], key=lambda b: b["node_id"])]
    ends = await client.run(lambda cluster: client.offsets(cluster, leaders, LATEST))
    dirs = await client.run(client.log_dirs)
    return render(request, "overview.html", nodes=nodes, cluster_id=md.get("cluster_id"), dirs=dirs,
                  controller=md.get("controller_id"), topics=len(md["topics"]), partitions=len(leaders),
                  messages=sum(ends.values()))


async def series(request: web.Request) -> web.Response:
    return web.json_response(request.app[SAMPLER].series())


# Topics -------------------------------------------------------------------------------------------
async def _topic_rows(client: ConsoleClient) -> list[dict[str, Any]]:
    md = await client.run(client.metadata)
    sizes: dict[str, int] = {}
    for d in await client.run(client.log_dirs):
        for (topic, _), n in d.sizes.items():
            sizes[topic] = sizes.get(topic, 0) + n
    return sorted(({"name": t["name"], "partitions": len(t["partitions"]), "internal": t.get("is_internal", False),
                    "size": sizes.get(t["name"], -1)} for t in md["topics"]), key=lambda t: (t["internal"], t["name"]))


async def topics(request: web.Request) -> web.Response:
    return render(request, "topics.html", topics=await _topic_rows(_client(request)), message=None)


async def create_topic(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form["name"]).strip()
    configs = {}
    for line in str(form.get("configs", "")).splitlines():
        key, sep, value = line.partition("=")
        if key.strip():
            if not sep:
                raise ValueError(f"expected key=value, found {line!r}")
            configs[key.strip()] = value.strip()
    client = _client(request)
    await client.create_topic(name, int(str(form["partitions"])), configs)
    return render(request, "topics_table.html", topics=await _topic_rows(client), message=f"created topic {name}")


async def topic(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    rows, configs = await _client(request).topic(name)
    return render(request, "topic.html", name=name, partitions=rows, configs=configs, message=None)


async def add_partitions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    client = _client(request)
    count = int(str(form["count"]))
    await client.create_partitions(name, count)
    rows, _ = await client.topic(name)
    return render(request, "partitions_table.html", name=name, partitions=rows,
                  message=f"{name} has {count} partitions")


async def delete_topic(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await _client(request).delete_topic(name)
    response = web.Response(text=f"deleted {name}")
    response.headers["HX-Redirect"] = "/topics"
    return response


# Message browser -------------------------------------------------------------------------------------
async def messages(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    query = request.query
    client = _client(request)
    rows, _ = await client.topic(name)
    partition = int(query.get("partition", "0"))
    offset = int(query["offset"]) if query.get("offset") else None
    timestamp = _ms(query["timestamp"]) if query.get("timestamp") else None
    limit = min(max(int(query.get("limit", BROWSE_LIMIT)), 1), MAX_LIMIT)
    found, next_offset = await asyncio.to_thread(browse, client.librdkafka, name, partition, offset, timestamp, limit)
    context = dict(name=name, partitions=rows, partition=partition, offset=offset, timestamp=query.get("timestamp", ""),
                   messages=found, next_offset=next_offset)
    return render(request, "messages_result.html" if is_htmx(request) else "messages.html", **context)


async def tail(request: web.Request) -> web.Response:
    """One live-tail poll: the messages after `offset` (appended to the table out of band) and
    the poller for the next ones."""
    name = request.match_info["name"]
    partition, offset = int(request.query["partition"]), int(request.query["offset"])
    found, next_offset = await asyncio.to_thread(browse, _client(request).librdkafka, name, partition, offset, None,
                                                 TAIL_LIMIT)
    return render(request, "tail.html", name=name, partition=partition, messages=found, next_offset=next_offset)


# Consumer groups ------------------------------------------------------------------------------------
async def groups(request: web.Request) -> web.Response:
    return render(request, "groups.html", groups=await _client(request).groups())


async def group(request: web.Request) -> web.Response:
    described = await _client(request).group(request.match_info["group"])
    return render(request, "group.html", **described, message=None)


async def reset_offsets(request: web.Request) -> web.Response:
    name = request.match_info["group"]
    form = await request.post()
    to = str(form["to"])
    value: int | None = None
    if to == "offset":
        value = int(str(form["value"]))
    elif to == "timestamp":
        value = _ms(str(form["value"]))
    client = _client(request)
    topic = str(form["topic"])
    new = await client.reset_offsets(name, topic, to, value)
    described = await client.group(name)
    return render(request, "group_offsets.html", **described,
                  message=f"committed new offsets for {len(new)} partitions of {topic}")


# Transactions --------------------------------------------------------------------------------------
async def transactions(request: web.Request) -> web.Response:
    return render(request, "transactions.html", transactions=await _client(request).transactions(), message=None)


async def abort_transaction(request: web.Request) -> web.Response:
    tid = request.match_info["id"]
    client = _client(request)
    await client.abort_transaction(tid)
    return render(request, "transactions_table.html", transactions=await client.transactions(),
                  message=f"aborted the transaction of {tid} (its producer is fenced)")
