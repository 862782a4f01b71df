"""The web console in a real browser: Debian's chromium driven by Playwright, against a live
`pyk serve` holding data written by real clients.

Each page is loaded and checked for what the clients wrote; each action (create, add partitions,
delete a topic; browse and live-tail messages; reset a group's offsets; abort a transaction) is
done by clicking in the page and then verified through a Kafka client (confluent-kafka), not
through the console.  A screenshot of each page is written to docs/console/ for the README.

Playwright is the Python package (its bundled driver runs offline) with the system chromium
(`executable_path`), so no browser is downloaded: ci/install.sh --test installs both.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from playwright.sync_api import sync_playwright

from tests.helpers import (
    REPO,
    BrokerProcess,
    api_versions_probe,
    confluent_admin,
    confluent_consumer,
    confluent_watermarks,
    create_topic,
    free_port,
    wait_for,
)

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "docs" / "console"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, str]]:
    """A broker with its console on a free port: (broker, console URL)."""
    port = free_port()
    b = BrokerProcess(Path(tmp_path_factory.mktemp("pyk-console")), {"console.listener": f"127.0.0.1:{port}"})
    b.start()
    try:
        yield b, f"http://127.0.0.1:{port}"
    finally:
        code = b.stop()
        assert code == 0, f"pyk serve exited with code {code}\n{b.log_tail()}"
        assert "Traceback" not in b.log_text(), b.log_text()[-6000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: ci/install.sh --test installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def produce(bootstrap: str, topic: str, records: list[dict[str, Any]], transactional_id: str | None = None) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    if transactional_id:
        conf["transactional.id"] = transactional_id
    p = Producer(conf)
    if transactional_id:
        p.init_transactions(20)
        p.begin_transaction()
    for r in records:
        p.produce(topic, **r)
    assert p.flush(20) == 0
    return p


def consume_and_commit(bootstrap: str, group: str, topic: str, count: int) -> Consumer:
    """A group member that read `count` messages and committed; still a member (close it)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "client.id": "billing-worker"})
    c.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen += 1
    assert seen == count, f"consumed {seen} of {count}"
    c.commit(asynchronous=False)
    return c


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)]
    finally:
        c.close()


def series(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/api/series", timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def counted(data: dict[str, Any], column: list[float]) -> float:
    """What a per-second series adds up to over its intervals (the first one's start is not in the
    series: the traffic below starts after it)."""
    times = data["times"]
    return sum(column[i] * (times[i] - times[i - 1]) for i in range(1, len(times)))


def wait_for_interval(url: str, after: float) -> dict[str, Any]:
    """The series once an interval ends after `after`: it counts what the shards did until then."""
    return wait_for(lambda: (d := series(url))["times"] and d["times"][-1] > after and d, timeout=30,  # type: ignore[no-any-return]
                    what="a sampling round")


def test_overview_shows_nodes_and_charts(live: tuple[BrokerProcess, str], page: Any) -> None:
    """The charts are the broker's own counters (the metrics snapshots the Prometheus endpoint
    renders), differenced per interval: summed back over the intervals they give exactly the
    messages the producer wrote, at least their bytes in and out, and Produce and Fetch
    latencies from real requests."""
    broker, url = live
    wait_for_interval(url, time.time())  # every shard (serving since the fixture) has its baseline
    create_topic(broker.bootstrap, "clicks", partitions=4)
    producer = produce(broker.bootstrap, "clicks", [{"value": b"x" * 100, "partition": i % 4} for i in range(400)])
    consumer = confluent_consumer(broker.bootstrap, **{"auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("clicks", p, 0) for p in range(4)])
    page.goto(url + "/")
    assert page.locator("#nodes tbody tr").count() == broker.shards
    disk = page.locator("#disk tbody tr")
    assert disk.count() == broker.shards  # one log dir per shard, from DescribeLogDirs
    assert {disk.nth(i).inner_text().split("\t")[1] for i in range(broker.shards)} == {
        str(d) for d in broker.shard_dirs()}
    page.locator("h1", has_text="Overview").wait_for()
    # Charts draw once the sampler has intervals; keep producing and consuming so the lines move.
    consumed = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for i in range(200):
            producer.produce("clicks", value=b"y" * 100, partition=i % 4)
        assert producer.flush(10) == 0
        consumed += sum(not m.error() for m in consumer.consume(1000, timeout=0.5))
        if page.locator("#latency-chart canvas").count() and int(
                page.locator("#latency-chart").get_attribute("data-points") or 0) >= 4:
            break
    produced = sum(confluent_watermarks(broker.bootstrap, "clicks", p)[1] for p in range(4))
    while consumed < produced and time.monotonic() < deadline:
        consumed += sum(not m.error() for m in consumer.consume(1000, timeout=0.5))
    consumer.close()
    assert consumed == produced
    data = wait_for_interval(url, time.time())
    assert sorted(data) == ["bytes", "latency", "messages", "times"]
    assert abs(counted(data, data["messages"]["clicks"]) - produced) < 0.5
    assert abs(counted(data, data["messages"]["total"]) - produced) < 0.5  # nothing else was written
    assert 100 * produced <= counted(data, data["bytes"]["in"]) <= 200 * produced  # 100-byte values in batches
    assert counted(data, data["bytes"]["out"]) >= 100 * produced
    latency = data["latency"]
    assert sorted(latency) == ["Fetch p50", "Fetch p99", "Produce p50", "Produce p99"]
    for api in ("Produce", "Fetch"):
        pairs = [(p50, p99) for p50, p99 in zip(latency[f"{api} p50"], latency[f"{api} p99"], strict=True)
                 if p50 is not None]
        assert pairs, f"no {api} latency charted"
        assert all(0 < p50 <= p99 < 30_000 for p50, p99 in pairs), pairs
    for chart in ("bytes", "messages", "latency"):
        page.locator(f"#{chart}-chart canvas").wait_for()
        assert int(page.locator(f"#{chart}-chart").get_attribute("data-points") or 0) >= 4
    assert page.locator("#latency-chart .u-legend", has_text="Produce p99").count() == 1
    page.reload()
    nodes = page.locator("#nodes tbody tr")
    for i in range(broker.shards):  # this host's shards, from their last snapshot
        cells = nodes.nth(i).inner_text().split("\t")
        assert cells[4].isdigit() and cells[5].endswith(" %"), cells
    page.locator("#latency-chart canvas").wait_for()
    page.wait_for_timeout(300)  # let uPlot paint before the screenshot
    shot(page, "overview")


def listening(port: int) -> bool:
    try:
        return bool(api_versions_probe("127.0.0.1", port))
    except OSError:
        return False


def test_overview_counts_across_a_shard_restart(tmp_path: Path) -> None:
    """A killed shard comes back with its counters at zero: the charts neither lose what it
    counted before nor take its new counters for a drop (the messages add up exactly)."""
    port = free_port()
    b = BrokerProcess(tmp_path, {"console.listener": f"127.0.0.1:{port}"}, shards=2)
    b.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_interval(url, time.time())
        create_topic(b.bootstrap, "restarts", partitions=4)
        produce(b.bootstrap, "restarts", [{"value": b"a" * 100, "partition": i % 4} for i in range(400)])
        wait_for_interval(url, time.time())  # counted before the crash
        victim = b.pids()[2]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(b.pids()) == 3 and victim not in b.pids(), timeout=30, what="a new shard process")
        wait_for(lambda: all(listening(b.port + i) for i in range(2)), timeout=60, what="both shards listening")
        produce(b.bootstrap, "restarts", [{"value": b"b" * 100, "partition": i % 4} for i in range(400)])
        data = wait_for_interval(url, time.time())
        assert sum(confluent_watermarks(b.bootstrap, "restarts", p)[1] for p in range(4)) == 800
        assert abs(counted(data, data["messages"]["restarts"]) - 800) < 0.5
        assert 800 * 100 <= counted(data, data["bytes"]["in"]) <= 800 * 200
    finally:
        b.stop()


def test_topics_create_add_partitions_delete(live: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = live
    page.goto(url + "/topics")
    page.fill("#create-topic input[name=name]", "payments")
    page.fill("#create-topic input[name=partitions]", "3")
    page.fill("#create-topic textarea[name=configs]", "retention.ms=3600000")
    page.click("#create-topic button")
    page.locator(".ok", has_text="created topic payments").wait_for()
    admin = confluent_admin(broker.bootstrap)
    assert len(admin.list_topics(timeout=10).topics["payments"].partitions) == 3
    shot(page, "topics")

    page.click("#topics-table a:text-is('payments')")
    page.locator("h1", has_text="Topic payments").wait_for()
    assert page.locator("#partitions-table tbody tr").count() == 3
    assert page.locator("#partitions-table tbody tr").nth(0).inner_text().split("\t")[-1] == "0 B"
    assert page.locator("#configs tr.override", has_text="retention.ms").inner_text().split("\t")[1] == "3600000"
    page.fill("#add-partitions input[name=count]", "5")
    page.click("#add-partitions button")
    page.locator(".ok", has_text="payments has 5 partitions").wait_for()
    assert page.locator("#partitions-table tbody tr").count() == 5
    assert len(admin.list_topics("payments", timeout=10).topics["payments"].partitions) == 5
    shot(page, "topic")

    page.click("#delete-topic button")
    page.wait_for_url(url + "/topics")
    assert page.locator("#topics-table a", has_text="payments").count() == 0
    deadline = time.monotonic() + 10
    while "payments" in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "payments" not in admin.list_topics(timeout=10).topics


def test_topic_page_shows_a_kafka_error(live: tuple[BrokerProcess, str], page: Any) -> None:
    _, url = live
    page.goto(url + "/topics/no-such-topic")
    assert "UNKNOWN_TOPIC_OR_PARTITION" in page.locator(".error").inner_text()


def test_message_browser_and_live_tail(live: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = live
    create_topic(broker.bootstrap, "orders", partitions=2)
    records = [{"key": f"order-{i}".encode(), "value": json.dumps({"id": i, "item": "book"}).encode(),
                "headers": [("source", b"web"), ("trace", bytes([0, 1, 254]))], "partition": 0} for i in range(10)]
    records.append({"key": None, "value": bytes([0xCA, 0xFE, 0x00, 0xFF]), "partition": 0})
    produce(broker.bootstrap, "orders", records)
    page.goto(url + "/topics/orders/messages")
    rows = page.locator("#message-table tbody tr")
    assert rows.count() == 11  # the last 50 of partition 0
    page.fill("#browse input[name=offset]", "8")
    page.click("#browse button")
    page.locator("#messages p", has_text="offsets 8..10").wait_for()
    assert rows.count() == 3
    first = rows.nth(0).inner_text()
    assert "order-8" in first and '"item": "book"' in first and "00 01 fe" in first and "web" in first
    assert "ca fe 00 ff" in rows.nth(2).inner_text()
    # By timestamp: everything was written just now, so an hour ago finds offset 0.
    page.fill("#browse input[name=offset]", "")
    page.fill("#browse input[name=timestamp]",
              time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3600)))
    page.click("#browse button")
    page.locator("#messages p", has_text="offsets 0..10").wait_for()

    page.check("#live-tail")
    produce(broker.bootstrap, "orders", [{"key": b"late", "value": b'{"tail": true}', "partition": 0}])
    page.locator("#message-table tbody tr", has_text="late").wait_for()
    assert rows.count() == 12
    assert confluent_watermarks(broker.bootstrap, "orders", 0) == (0, 12)
    shot(page, "messages")


def test_group_lag_and_reset_offsets(live: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = live
    create_topic(broker.bootstrap, "events", partitions=3)
    produce(broker.bootstrap, "events", [{"value": b"e%d" % i, "partition": i % 3} for i in range(60)])
    member = consume_and_commit(broker.bootstrap, "billing", "events", 60)
    produce(broker.bootstrap, "events", [{"value": b"more", "partition": p} for p in (0, 0, 1)])
    page.goto(url + "/groups")
    page.click("#groups a:text-is('billing')")
    assert page.locator("#group-state").inner_text() == "Stable"
    assert "billing-worker" in page.locator("#members tbody tr").inner_text()
    assert "events: 0, 1, 2" in page.locator("#members tbody tr").inner_text()
    lags = [page.locator("#lag tbody tr").nth(p).inner_text().split("\t")[4] for p in range(3)]
    assert lags == ["2", "1", "0"]
    assert page.locator("#reset-offsets button").is_disabled()  # a live group's offsets are its own
    page.locator("#lag-chart canvas").wait_for()
    shot(page, "group")
    member.close()

    page.reload()
    assert page.locator("#group-state").inner_text() == "Empty"
    page.select_option("#reset-offsets select[name=to]", "earliest")
    page.click("#reset-offsets button")
    page.locator(".ok", has_text="committed new offsets for 3 partitions of events").wait_for()
    assert committed(broker.bootstrap, "billing", "events", 3) == [0, 0, 0]
    page.select_option("#reset-offsets select[name=to]", "offset")
    page.fill("#reset-offsets input[name=value]", "15")
    page.click("#reset-offsets button")
    page.locator("#lag tbody tr", has_text="15").first.wait_for()
    assert committed(broker.bootstrap, "billing", "events", 3) == [15, 15, 15]


def test_transactions_abort(live: tuple[BrokerProcess, str], page: Any) -> None:
    broker, url = live
    create_topic(broker.bootstrap, "ledger", partitions=1)
    producer = produce(broker.bootstrap, "ledger", [{"value": b"pending", "partition": 0}], transactional_id="ledger-tx")
    page.goto(url + "/transactions")
    row = page.locator("#transactions tbody tr", has_text="ledger-tx")
    assert row.locator(".state").inner_text() == "Ongoing"
    assert "ledger: 0" in row.inner_text()
    shot(page, "transactions")
    row.locator("button", has_text="Abort").click()
    page.locator(".ok", has_text="aborted the transaction of ledger-tx").wait_for()
    # Through a client: the producer is fenced, and a read_committed consumer reaches the end
    # of the partition without the aborted record.
    with pytest.raises(KafkaException, match="fenced"):
        producer.commit_transaction(10)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ledger-check", "isolation.level": "read_committed",
                  "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("ledger", 0, 0)])
    deadline = time.monotonic() + 20
    read = []
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            break  # end of partition: the last stable offset moved past the aborted transaction
        read.append(m.value())
    c.close()
    assert time.monotonic() < deadline and read == []


def test_forged_changes_are_refused(live: tuple[BrokerProcess, str]) -> None:
    """A cross-site form post (no HX-Request header) and a rebound host name get 403; the topic stays."""
    broker, url = live
    create_topic(broker.bootstrap, "kept", partitions=1)
    forged = urllib.request.Request(url + "/topics/kept/delete", data=b"", method="POST")
    rebound = urllib.request.Request(url + "/topics", headers={"Host": "attacker.example"})
    for request in (forged, rebound):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    assert "kept" in confluent_admin(broker.bootstrap).list_topics(timeout=10).topics


def test_console_is_a_client_of_the_broker() -> None:
    """The console reaches the broker through the Kafka protocol only: it imports no shard, log
    or coordinator internals (consumer_protocol is the wire format of group assignments; the
    inter-broker client and the listener's security settings are how it logs in as the broker; the
    overview's charts read the metrics snapshots' data classes, which import nothing)."""
    from tests.test_sourcecode import _import_graph

    allowed = ("pyk.console", "pyk.client", "pyk.protocol", "pyk.errors", "pyk.config", "pyk.configdef",
               "pyk.tools", "pyk.coordinator.consumer_protocol", "pyk.server.security.inter_broker",
               "pyk.server.security.settings",
               "pyk.server.metrics")  # the shards' metrics snapshots, as the orchestrator collects them
    graph = _import_graph()
    inside = [f"{a} imports {b} at {where}" for a, targets in sorted(graph.items()) if a.startswith("pyk.console")
              for b, where in targets.items() if b != "pyk" and not b.startswith(allowed)]
    assert not inside, "\n".join(inside)


def test_vendored_assets_match_the_lockfile() -> None:
    """pyk/console/static/vendor holds the versions ci/console/package-lock.json locks (refreshed
    together by ci/console-assets.sh), and the package ships them."""
    lock = json.loads((REPO / "ci" / "console" / "package-lock.json").read_text())
    locked = {name.removeprefix("node_modules/"): entry["version"] for name, entry in lock["packages"].items() if name}
    vendor = REPO / "pyk" / "console" / "static" / "vendor"
    shipped = dict(line.split() for line in (vendor / "VERSIONS").read_text().splitlines())
    assert shipped == locked
    assert f'version:"{locked["htmx.org"]}"' in (vendor / "htmx.min.js").read_text()
    package_data = (REPO / "pyproject.toml").read_text()
    assert '"console/static/vendor/*"' in package_data and '"console/templates/*.html"' in package_data
