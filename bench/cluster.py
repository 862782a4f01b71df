"""Cluster measurements for docs/cluster.md: produce throughput with replication factor 3 vs 1
(kload from the shared bench kit, 100 B acks=1 and 1 KiB acks=all) with the brokers' CPU per MB,
consumer end-to-end latency at 10 k msgs/s with acks=all (RF=3 beside RF=1; librdkafka's default
producer and one with max.in.flight=5), failover time (kill -9 of the leader's host to the first acknowledged
acks=all write) over N kills, and controlled-shutdown time (SIGTERM of a host leading partitions under
load, to its leaderships moved and to its exit) over N shutdowns.

    eval "$(/work/shared/bench/setup.sh /work/benchkit)"   # or KLOAD=<path to kload>
    python3 bench/cluster.py --passes 3 --kills 20 --shutdowns 6 --dur 8

One ZooKeeper (tick 500 ms) and three single-shard hosts with zookeeper.session.timeout.ms=3000,
as the tests run them, in a temp directory; stopped at the end."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyk.tools.cluster import free_port, host_overrides, operator_listeners, start_zookeeper, wait_port

SESSION_TIMEOUT_MS = 3000


class Host:
    def __init__(self, index: int, zookeeper: str, root: Path) -> None:
        self.index, self.port, self.dir = index, free_port(), root / f"host-{index}"
        self.cmd = [sys.executable, "-m", "pyk", "serve"]
        conf = {**host_overrides(index, self.port, zookeeper, self.dir / "data"), **operator_listeners()}
        conf["zookeeper.session.timeout.ms"] = str(SESSION_TIMEOUT_MS)
        for key, value in conf.items():
            self.cmd += ["--override", f"{key}={value}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "pyk.log", "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_port(self.port, 60, self.proc)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)

    @property
    def node(self) -> int:
        return 1 + 100 * self.index  # single-shard hosts

    def pids(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def create(bootstrap: str, topic: str, rf: int, partitions: int = 1) -> None:
    """Creates the topic, waits until every host's metadata shows it with all replicas in sync
    (kload asks any host at once), then until one acks=all write per partition is answered: the
    followers fetch the new partition by then (a follower's fetcher takes it up when its long
    poll for the others ends, up to replica.fetch.wait.max.ms after the topic appeared)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, rf, config={"min.insync.replicas": str(min(rf, 2))})])[topic].result(30)
    deadline = time.monotonic() + 60
    while not all((p := leader(host, topic))[0] >= 0 and p[1] == rf for host in bootstrap.split(",")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: replicas not in sync")
        time.sleep(0.2)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    for partition in range(partitions):
        producer.produce(topic, b"warm-up", partition=partition)
    if producer.flush(30):
        raise TimeoutError(f"{topic}: warm-up writes not answered")


def kload(bootstrap: str, *args: str) -> dict[str, str]:
    run = subprocess.run([os.environ.get("KLOAD", "kload"), "-b", bootstrap, *args], capture_output=True, text=True,
                         timeout=300)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("kload ")), None)
    if line is None:
        raise RuntimeError(f"kload {' '.join(args)}: no result (exit {run.returncode})\n{run.stderr[-2000:]}")
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def leader(bootstrap: str, topic: str) -> tuple[int, int]:
    from confluent_kafka.admin import AdminClient

    """(leader, ISR size) as the first host of `bootstrap` that answers sees it; (-1, 0) if unknown."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic]
    if md.error is not None or 0 not in md.partitions:
        return -1, 0
    p = md.partitions[0]
    return p.leader, len(p.isrs)


def failover(hosts: list[Host], topic: str, kills: int) -> list[float]:
    """kill -9 of the leader's host, then one acks=all write at a time until one is acknowledged."""
    from confluent_kafka import Producer

    times = []
    for k in range(kills):
        boot = ",".join(f"127.0.0.1:{h.port}" for h in hosts)
        while leader(boot, topic)[1] < 3:
            time.sleep(0.2)
        producer = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 0, "message.timeout.ms": 30000,
                             "retry.backoff.ms": 20, "topic.metadata.refresh.interval.ms": 100})
        producer.produce(topic, b"warm")
        producer.flush(30)
        victim = hosts[leader(boot, topic)[0] // 100]
        victim.kill9()
        killed = time.monotonic()
        acked: list[float] = []
        while not acked:  # the first write to be acknowledged after the kill
            producer.produce(topic, f"k{k}".encode(), on_delivery=lambda err, _m, a=acked: err is None and a.append(
                time.monotonic()))
            producer.poll(0.05)
        times.append(acked[0] - killed)
        producer.flush(30)
        print(f"kill {k + 1}: host {victim.index}, first acks=all write after {times[-1]:.2f} s", flush=True)
        victim.start()
    return times


def leaders(admin: Any, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (leader, ISR size) as the host behind `admin` sees them."""
    md = admin.list_topics(topic, timeout=10).topics[topic]
    return {p.id: (p.leader, len(p.isrs)) for p in md.partitions.values()}


def controlled_shutdowns(hosts: list[Host], topic: str, runs: int, dur: int) -> list[tuple[float, float]]:
    """SIGTERM (to the host's main process, as a service manager's stop) of the host leading most
    partitions of `topic` while kload writes to it at 10 k msgs/s with acks=all: (seconds to its
    leaderships moved, as another host's metadata shows them; seconds to its exit).  The host is
    started again and back in every ISR before the next run."""
    from confluent_kafka.admin import AdminClient

    times = []
    for k in range(runs):
        boot = ",".join(f"127.0.0.1:{h.port}" for h in hosts)
        admin = AdminClient({"bootstrap.servers": boot})
        while any(isr < 3 for _, isr in leaders(admin, topic).values()):
            time.sleep(0.2)
        led = leaders(admin, topic)
        victim = max(hosts, key=lambda h: sum(lead == h.node for lead, _ in led.values()))
        watcher = AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{h.port}" for h in hosts if h is not victim)})
        load = subprocess.Popen([os.environ.get("KLOAD", "kload"), "-b", boot, "-m", "e2e", "-t", topic, "-s", "100",
                                 "-r", "10000", "-d", str(dur), "-X", "acks=all", "-i", "5"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(min(2.0, dur / 3))
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        moved = exited = None
        while moved is None or exited is None:
            if exited is None and victim.proc.poll() is not None:
                exited = time.monotonic() - stopped
            if moved is None:
                try:
                    if all(lead not in (-1, victim.node) for lead, _ in leaders(watcher, topic).values()):
                        moved = time.monotonic() - stopped
                except Exception:  # noqa: BLE001 -- a metadata call racing the stop: ask again
                    pass
            if time.monotonic() - stopped > 120:
                raise TimeoutError(f"host {victim.index}: not stopped in 120 s")
            time.sleep(0.01)
        times.append((moved, exited))
        said = [ln for ln in (victim.dir / "pyk.log").read_text(errors="replace").splitlines() if "controlled shutdown" in ln]
        print(f"shutdown {k + 1}: host {victim.index} (led {sum(lead == victim.node for lead, _ in led.values())}), "
              f"leaderships moved after {moved:.2f} s, exited after {exited:.2f} s; load {os.getloadavg()[0]:.1f}; "
              f"host: {said[-1].split(': ', 1)[-1] if said else '-'}", flush=True)
        load.wait(300)
        victim.start()
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--dur", type=int, default=8)
    ap.add_argument("--shutdowns", type=int, default=6)
    ap.add_argument("--no-produce", action="store_true", help="skip the RF 3 vs 1 produce runs")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pyk-cluster-bench-"))
    zk_port = free_port()
    zk = start_zookeeper(root / "zookeeper", zk_port, tick_ms=500)
    hosts = [Host(i, f"127.0.0.1:{zk_port}", root) for i in range(3)]
    try:
        for h in hosts:
            h.start()
        boot = ",".join(f"127.0.0.1:{h.port}" for h in hosts)
        print(f"# load average before: {os.getloadavg()}", flush=True)
        # The first consumer group creates __consumer_offsets (50 partitions, 3 replicas each),
        # which holds every host's event loop for ~0.3-0.5 s here: done before anything is timed.
        create(boot, "warm-up", 3)
        kload(boot, "-m", "e2e", "-t", "warm-up", "-s", "100", "-r", "1000", "-d", "1", "-X", "acks=all", "-i", "5")
        rows: dict[str, list[tuple[float, float, float]]] = {}
        for p in range(args.passes):
            for rf in () if args.no_produce else (1, 3):
                for name, size, acks in (("100B-acks1", "100", "1"), ("1KiB-acksall", "1024", "all")):
                    topic = f"b{p}-rf{rf}-{name}"
                    create(boot, topic, rf)
                    pids = [pid for h in hosts for pid in h.pids()]
                    c0 = cpu_seconds(pids)
                    r = kload(boot, "-m", "produce", "-t", topic, "-p", "1", "-s", size, "-n", "100000000",
                              "-d", str(args.dur), "-X", f"acks={acks}")
                    cpu = cpu_seconds(pids) - c0
                    mb = float(r["MB_s"]) * float(r["secs"])
                    rows.setdefault(f"RF={rf} {name}", []).append((float(r["msgs_s"]), float(r["MB_s"]),
                                                                    cpu / mb if mb else float("nan")))
                    print(f"pass {p} RF={rf} {name}: {r['msgs_s']} msgs/s {r['MB_s']} MB/s, broker CPU "
                          f"{cpu:.1f} s for {mb:.0f} MB; load {os.getloadavg()[0]:.1f}", flush=True)
            # librdkafka's default producer pipelines a request every linger.ms (up to 1 M in flight);
            # with at most 5 in flight its requests grow while the broker is slow
            # (docs/cluster.md, Measurements).
            for rf, producer in ((1, ""), (3, ""), (1, "max.in.flight=5"), (3, "max.in.flight=5")):
                topic = f"b{p}-e2e-rf{rf}{'-inflight5' if producer else ''}"
                name = f"e2e 10k RF={rf} acks=all{' max.in.flight=5' if producer else ''}"
                create(boot, topic, rf)
                e2e = ["-m", "e2e", "-t", topic, "-s", "100", "-r", "10000", "-d", str(args.dur), "-X", "acks=all",
                       "-i", "5", *(["-X", producer] if producer else [])]
                try:
                    try:
                        r = kload(boot, *e2e)
                    except RuntimeError as exc:  # once seen: a host's metadata without the new topic yet
                        print(f"pass {p} {name} failed, again in 1 s: {exc}", flush=True)
                        time.sleep(1)
                        r = kload(boot, *e2e)
                except RuntimeError as exc:
                    print(f"pass {p} {name} failed: {exc}", flush=True)
                    continue
                rows.setdefault(name, []).append((float(r["p50_ms"]), float(r["p99_ms"]), float(r["msgs_s"])))
                print(f"pass {p} {name}: {r}; load {os.getloadavg()[0]:.1f}", flush=True)
        print("\n| workload | msgs/s | MB/s | broker CPU ms per MB |\n|---|---|---|---|")
        for name, vals in rows.items():
            if name.startswith("e2e"):
                continue
            print(f"| {name} | {statistics.median(v[0] for v in vals):.0f} | {statistics.median(v[1] for v in vals):.2f}"
                  f" | {1000 * statistics.median(v[2] for v in vals):.1f} |")
        for name, e2e in rows.items():
            if name.startswith("e2e"):
                print(f"\n{name}: p50 {statistics.median(v[0] for v in e2e):.1f} ms, p99 "
                      f"{statistics.median(v[1] for v in e2e):.1f} ms (medians of {len(e2e)}), "
                      f"received msgs/s {[v[2] for v in e2e]}")
        if args.kills:
            topic = "failover"
            create(boot, topic, 3)
            times = failover(hosts, topic, args.kills)
            print(f"\nfailover over {len(times)} kills: p50 {pct(times, 0.5):.2f} s, p99 {pct(times, 0.99):.2f} s, "
                  f"min {min(times):.2f} s, max {max(times):.2f} s")
        if args.shutdowns:
            topic = "shutdown"
            create(boot, topic, 3, partitions=6)
            stops = controlled_shutdowns(hosts, topic, args.shutdowns, args.dur)
            print(f"\ncontrolled shutdown over {len(stops)} runs: leaderships moved after p50 "
                  f"{statistics.median(m for m, _ in stops):.2f} s (min {min(m for m, _ in stops):.2f}, max "
                  f"{max(m for m, _ in stops):.2f}), exit after p50 {statistics.median(e for _, e in stops):.2f} s "
                  f"(min {min(e for _, e in stops):.2f}, max {max(e for _, e in stops):.2f})")
        print(f"# load average after: {os.getloadavg()}")
    finally:
        for h in hosts:
            h.stop()
        os.killpg(zk.pid, signal.SIGTERM)
        zk.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
