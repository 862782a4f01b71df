"""`pyk cluster up --hosts N [--zookeepers M]` / `pyk cluster down`: ZooKeeper and N pyk hosts on
this machine.

`up` starts ZooKeeper (Debian's `zookeeper` package, installed with apt-get when missing and
run as root) with its data under the cluster directory: one standalone server, or with
`--zookeepers 3` an ensemble of three on loopback (each server its own dataDir and myid, client
port and quorum/election ports on 127.0.0.1), which outlives any one server.  Then N `pyk serve`
processes, each a host with its own node ids (host i: node.id = 1 + 100*i), ports, data
directory and log file, all joined through `zookeeper.connect` (every server of the ensemble).
It returns once every host answers, printing the bootstrap addresses.  The pids and ports go to
`<dir>/cluster.json`, which `down` reads to stop the hosts (SIGTERM) and then ZooKeeper.

The tests start ZooKeeper with `start_zookeeper` / `start_ensemble` and the hosts with the same
overrides (`host_overrides`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ZK_SERVER_SCRIPTS = ("/usr/share/zookeeper/bin/zkServer.sh",)
NODE_ID_STRIDE = 100  # host i's shards are nodes 1 + 100*i, 2 + 100*i, ...
DEFAULT_DIR = "/tmp/pyk-cluster"


def zookeeper_script() -> str | None:
    """Debian's zkServer.sh, if the `zookeeper` package is installed."""
    return shutil.which("zkServer.sh") or next((p for p in ZK_SERVER_SCRIPTS if os.path.exists(p)), None)


def install_zookeeper() -> str:
    script = zookeeper_script()
    if script is not None:
        return script
    if os.geteuid() != 0:
        raise SystemExit("ZooKeeper is not installed: run `apt-get install zookeeper` as root (or this command as root)")
    print("installing Debian's zookeeper package", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "zookeeper"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    script = zookeeper_script()
    if script is None:
        raise SystemExit("the zookeeper package did not provide zkServer.sh")
    return script


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None,
              address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {address}:{port} after {timeout}s")


@dataclass(frozen=True)
class ZooKeeperPorts:
    """One server's loopback ports: clients', and the ensemble's own (followers to the leader,
    leader election)."""

    client: int
    quorum: int = 0
    election: int = 0


def ensemble_ports(count: int) -> list[ZooKeeperPorts]:
    return [ZooKeeperPorts(free_port(), free_port(), free_port()) for _ in range(count)]


def start_zookeeper(directory: Path, port: int, tick_ms: int = 500, address: str = "127.0.0.1",
                    ensemble: Sequence[ZooKeeperPorts] = (), server_id: int = 0) -> subprocess.Popen[bytes]:
    """A ZooKeeper server on `address`:`port`, data and log under `directory`: standalone, or
    server `server_id` (its myid, from 1) of `ensemble`.  A standalone server is returned once it
    accepts connections, an ensemble member once it listens (it serves clients only when a
    quorum has formed: `wait_serving`).  A short tick lets sessions expire quickly (min 2
    ticks); the fault tests bind it to a bridge address their network namespaces reach."""
    script = zookeeper_script()
    if script is None:
        raise FileNotFoundError("ZooKeeper is not installed (Debian package zookeeper)")
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = [f"tickTime={tick_ms}", f"dataDir={data}", f"clientPort={port}", f"clientPortAddress={address}",
             "admin.enableServer=false", "maxSessionTimeout=60000",
             "4lw.commands.whitelist=srvr,cons"]  # `srvr` says whether it serves, `cons` whom
    if ensemble:
        # Ticks a follower may take to join / to answer the leader: generous on a busy machine.
        lines += ["initLimit=20", "syncLimit=10"]
        lines += [f"server.{i}={address}:{s.quorum}:{s.election}" for i, s in enumerate(ensemble, 1)]
        (data / "myid").write_text(f"{server_id}\n")
    conf = directory / "zoo.cfg"
    conf.write_text("\n".join(lines) + "\n")
    log = open(directory / "zookeeper.log", "ab")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen([script, "start-foreground", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={"PATH": "/usr/bin:/bin", "ZOO_LOG_DIR": str(directory)})
    log.close()
    wait_port(port, 60, proc, address)
    return proc


def four_letter_word(port: int, word: str, address: str = "127.0.0.1") -> str:
    """A ZooKeeper server's answer to a four-letter command (`srvr`, `cons`); "" if it does not answer."""
    try:
        with socket.create_connection((address, port), timeout=5) as conn:
            conn.sendall(word.encode())
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


def server_mode(port: int, address: str = "127.0.0.1") -> str | None:
    """"leader", "follower" or "standalone" while the server serves clients, else None."""
    for line in four_letter_word(port, "srvr", address).splitlines():
        if line.startswith("Mode: "):
            return line.split(": ", 1)[1].strip()
    return None


def wait_serving(ports: Sequence[int], timeout: float, address: str = "127.0.0.1") -> None:
    """Until every server of `ports` serves clients (an ensemble has elected its leader)."""
    deadline = time.monotonic() + timeout
    while not all(server_mode(port, address) for port in ports):
        if time.monotonic() > deadline:
            raise TimeoutError(f"ZooKeeper servers {list(ports)} not all serving after {timeout}s")
        time.sleep(0.2)


def start_ensemble(directory: Path, ports: Sequence[ZooKeeperPorts], tick_ms: int = 500,
                   address: str = "127.0.0.1") -> list[subprocess.Popen[bytes]]:
    """Every server of an ensemble, server i (from 1) under `directory`/zookeeper-<i>; returns
    once all of them serve clients."""
    procs = [start_zookeeper(directory / f"zookeeper-{i}", p.client, tick_ms, address, ports, i)
             for i, p in enumerate(ports, 1)]
    wait_serving([p.client for p in ports], 120, address)
    return procs


def connect_string(ports: Sequence[ZooKeeperPorts], address: str = "127.0.0.1") -> str:
    return ",".join(f"{address}:{p.client}" for p in ports)


def host_overrides(index: int, port: int, zookeeper: str, log_dir: Path, shards: int = 1,
                   rack: str | None = None) -> dict[str, str]:
    """The settings that make `pyk serve` host `index` of a cluster."""
    overrides = {"node.id": str(1 + NODE_ID_STRIDE * index), "listeners": f"PLAINTEXT://127.0.0.1:{port}",
                 "log.dirs": str(log_dir), "num.shards": str(shards), "zookeeper.connect": zookeeper}
    if rack is not None:
        overrides["broker.rack"] = rack
    return overrides


def operator_listeners() -> dict[str, str]:
    """A host's own metrics and console ports: on the default ports only the first host would bind."""
    return {"metrics.listener": f"127.0.0.1:{free_port()}", "console.listener": f"127.0.0.1:{free_port()}"}


def _up(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    state_file = directory / "cluster.json"
    if state_file.exists():
        print(f"a cluster is already up in {directory} (pyk cluster down --dir {directory} first)", file=sys.stderr)
        return 1
    install_zookeeper()
    if args.zookeepers == 1:
        ports = [ZooKeeperPorts(free_port())]
        procs = [start_zookeeper(directory / "zookeeper", ports[0].client, tick_ms=2000)]
    else:
        ports = ensemble_ports(args.zookeepers)
        procs = start_ensemble(directory, ports, tick_ms=2000)
    servers = [{"pid": proc.pid, "port": p.client} for proc, p in zip(procs, ports, strict=True)]
    state: dict[str, Any] = {"zookeepers": servers, "hosts": []}
    zookeeper = connect_string(ports)
    for i in range(args.hosts):
        port = free_port(args.shards)
        host_dir = directory / f"host-{i}"
        host_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pyk", "serve"]
        operator = operator_listeners()
        for key, value in {**host_overrides(i, port, zookeeper, host_dir / "data", args.shards), **operator}.items():
            cmd += ["--override", f"{key}={value}"]
        with open(host_dir / "pyk.log", "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        state["hosts"].append({"pid": proc.pid, "port": port, "dir": str(host_dir), **operator})
        state_file.write_text(json.dumps(state, indent=1))
    for host in state["hosts"]:
        wait_port(host["port"], 60)
    print(f"ZooKeeper: {zookeeper}")
    print("bootstrap: " + ",".join(f"127.0.0.1:{h['port']}" for h in state["hosts"]))
    print("metrics: " + ", ".join(f"http://{h['metrics.listener']}/metrics" for h in state["hosts"]))
    print("console: " + ", ".join(f"http://{h['console.listener']}/" for h in state["hosts"]))
    return 0


def _signal_and_wait(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def _down(args: argparse.Namespace) -> int:
    state_file = Path(args.dir) / "cluster.json"
    if not state_file.exists():
        print(f"no cluster is up in {args.dir}", file=sys.stderr)
        return 1
    state = json.loads(state_file.read_text())
    for host in state["hosts"]:
        _signal_and_wait(host["pid"], 30)
    for server in state["zookeepers"]:
        _signal_and_wait(server["pid"], 10)
    state_file.unlink()
    print(f"stopped {len(state['hosts'])} host(s) and {len(state['zookeepers'])} ZooKeeper server(s)")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("cluster", help="start or stop a local cluster of pyk hosts with ZooKeeper")
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start ZooKeeper and --hosts pyk hosts")
    up.add_argument("--hosts", type=int, default=3)
    up.add_argument("--zookeepers", type=int, choices=(1, 3, 5), default=1,
                    help="ZooKeeper servers: 1 standalone, or an ensemble of 3 or 5 on loopback")
    up.add_argument("--shards", type=int, default=1, help="shards (nodes) per host")
    up.add_argument("--dir", default=DEFAULT_DIR, help="data, logs and state of the cluster")
    down = actions.add_parser("down", help="stop the cluster started by `up`")
    down.add_argument("--dir", default=DEFAULT_DIR)


def run(args: argparse.Namespace) -> int:
    return _up(args) if args.action == "up" else _down(args)
