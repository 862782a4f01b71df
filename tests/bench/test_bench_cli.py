"""`pyk bench` against a real `pyk serve`: the counts it reports are what the broker holds.

Each run is short (1-2 s) on a shared 2-core machine, so nothing here asserts a rate; it checks
that the numbers add up (acknowledged == stored == consumed, nothing lost end to end), that the
JSON has its fields, and that plots are written.  Runs go through `pyk.cli.main` in this process
(the same code path as the command line, without an interpreter start per run).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pyk.cli import main
from pyk.client import Cluster
from tests.helpers import unique_topic

pytestmark = pytest.mark.timeout(120)


def bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / f"run-{len(list(tmp_path.glob('run-*.json')))}.json"
    code = main(["bench", *args, "--json", str(out), "--quiet"])
    assert code == 0, f"pyk bench {' '.join(args)} exited with {code}"
    return json.loads(out.read_text())


def stored(bootstrap: str, topic: str) -> int:
    """Records the broker holds for the topic: sum over partitions of (latest - earliest offset)."""

    async def ask() -> int:
        cluster = await Cluster.connect(bootstrap)
        try:
            parts = await cluster.metadata(topic)
            latest = await cluster.list_offsets(topic, parts, -1)
            earliest = await cluster.list_offsets(topic, parts, -2)
            return sum(latest[p] - earliest[p] for p in latest)
        finally:
            cluster.close()

    return asyncio.run(ask())


RESULT_FIELDS = {"mode", "records", "bytes", "seconds", "msgs_per_s", "mb_per_s", "latency_ms", "latency_kind",
                 "errors", "error_codes", "broker_cpu_pct", "client_cpu_pct", "extra"}


def test_produce_then_consume_counts_match_the_broker(broker, tmp_path: Path) -> None:
    topic = unique_topic("bench-pc")
    pid = getattr(getattr(broker, "proc", None), "pid", None)
    pids = ["--broker-pid", str(pid)] if pid else []
    produced = bench(tmp_path, "produce", "-b", broker.bootstrap, "-t", topic, "-p", "3", "--acks", "1",
                     "-d", "1.5", "-s", "100", *pids)
    r = produced["result"]
    assert RESULT_FIELDS <= r.keys()
    assert {"p50", "p99", "p99.9", "max"} <= r["latency_ms"].keys()
    assert r["errors"] == 0 and r["records"] > 0
    assert r["bytes"] == r["records"] * 100
    assert r["latency_ms"]["p50"] is not None and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"]
    if pid:
        assert r["broker_cpu_pct"] is not None and r["broker_cpu_pct"] > 0
    assert produced["timeline"] and {"t", "msgs_per_s", "p99_ms"} <= produced["timeline"][0].keys()
    assert stored(broker.bootstrap, topic) == r["records"]

    consumed = bench(tmp_path, "consume", "-b", broker.bootstrap, "-t", topic, "-d", "30", "--no-create")
    c = consumed["result"]
    assert c["records"] == r["records"]
    assert c["extra"]["end_reached"] is True


def test_compressed_produce_with_two_processes(broker, tmp_path: Path) -> None:
    topic = unique_topic("bench-lz4")
    produced = bench(tmp_path, "produce", "-b", broker.bootstrap, "-t", topic, "-p", "2", "--acks", "1",
                     "--codec", "lz4", "--procs", "2", "-d", "1.5", "-X", "batch.num.messages=500")
    r = produced["result"]
    assert r["errors"] == 0 and r["records"] > 0
    assert stored(broker.bootstrap, topic) == r["records"]
    consumed = bench(tmp_path, "consume", "-b", broker.bootstrap, "-t", topic, "-d", "30", "--no-create")
    assert consumed["result"]["records"] == r["records"]


def test_e2e_loses_nothing_and_measures_latency(broker, tmp_path: Path) -> None:
    topic = unique_topic("bench-e2e")
    out = bench(tmp_path, "e2e", "-b", broker.bootstrap, "-t", topic, "-p", "2", "--acks", "1", "-r", "5000",
                "-d", "1.5", "-Y", "fetch.wait.max.ms=10")
    r = out["result"]
    assert r["extra"]["lost"] == 0 and r["extra"]["produce_errors"] == 0
    assert r["records"] == r["extra"]["produced"] == stored(broker.bootstrap, topic)
    assert 7000 <= r["records"] <= 7501  # 5000/s for 1.5 s (a busy machine may fall a little behind)
    assert r["latency_kind"] == "produce->consume"
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]


def test_librdkafka_client_e2e(broker, tmp_path: Path) -> None:
    topic = unique_topic("bench-rdk")
    out = bench(tmp_path, "e2e", "--client", "librdkafka", "-b", broker.bootstrap, "-t", topic, "--acks", "1",
                "-r", "2000", "-d", "1.5", "-X", "linger.ms=1", "-Y", "fetch.wait.max.ms=10")
    r = out["result"]
    assert r["extra"]["lost"] == 0
    assert r["records"] == r["extra"]["produced"] == stored(broker.bootstrap, topic)
    assert r["latency_ms"]["p50"] is not None


def test_sweep_writes_a_plot_per_value(broker, tmp_path: Path) -> None:
    png = tmp_path / "sweep.png"
    out = tmp_path / "sweep.json"
    code = main(["bench", "sweep", "--sweep", "linger.ms=0,5", "--workload", "produce", "-b", broker.bootstrap,
                 "-t", unique_topic("bench-sweep"), "--acks", "1", "-r", "20000", "-d", "1",
                 "--json", str(out), "--plot", str(png), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert [p["value"] for p in data["points"]] == ["0", "5"]
    assert all(p["result"]["records"] > 0 and p["result"]["errors"] == 0 for p in data["points"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_plot(broker, tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    code = main(["bench", "produce", "-b", broker.bootstrap, "-t", unique_topic("bench-plot"), "--acks", "1",
                 "-d", "1", "--interval", "0.25", "--plot", str(png), "--quiet"])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_rejects_a_broker_key_without_start_broker(broker, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "sweep", "--sweep", "bogus.key=1,2", "-b", broker.bootstrap, "--quiet"])
    assert code == 2
    assert "cannot tell whose setting" in capsys.readouterr().err


def test_broker_key_sweep_restarts_a_local_broker(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    code = main(["bench", "sweep", "--sweep", "log.segment.bytes=1048576,104857600", "--start-broker",
                 "--broker-override", "num.shards=1", "--acks", "1", "-d", "1", "-X", "batch.num.messages=1000",
                 "--json", str(out), "--quiet"])
    assert code == 0
    points = json.loads(out.read_text())["points"]
    assert len(points) == 2
    for p in points:
        assert p["result"]["records"] > 0 and p["result"]["errors"] == 0
        assert p["result"]["broker_cpu_pct"] is not None  # the started broker's pid is measured
    assert points[0]["workload"]["bootstrap"] != points[1]["workload"]["bootstrap"]  # a new broker per value
