"""`pyk cluster up --hosts N` / `pyk cluster down`: a ZooKeeper and N pyk hosts on this machine.

`up` starts a ZooKeeper server (Debian's `zookeeper` package, installed with apt-get when
missing and run as root) on a free loopback port with its data under the cluster directory,
then N `pyk serve` processes, each a host with its own node ids (host i: node.id = 1 + 100*i),
ports, data directory and log file, all joined through `zookeeper.connect`.  It returns once
every host answers, printing the bootstrap addresses.  The pids and ports go to
`<dir>/cluster.json`, which `down` reads to stop the hosts (SIGTERM) and then ZooKeeper.

The tests start ZooKeeper with `start_zookeeper` and the hosts with the same overrides
(`host_overrides`).
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


def start_zookeeper(directory: Path, port: int, tick_ms: int = 500,
                    address: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    """A standalone ZooKeeper server on `address`:`port`, data and log under `directory`; returns
    once it accepts connections.  A short tick lets sessions expire quickly (min 2 ticks); the
    fault tests bind it to a bridge address their network namespaces reach."""
    script = zookeeper_script()
    if script is None:
        raise FileNotFoundError("ZooKeeper is not installed (Debian package zookeeper)")
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "zoo.cfg"
    conf.write_text(f"tickTime={tick_ms}\ndataDir={directory / 'data'}\nclientPort={port}\n"
                    f"clientPortAddress={address}\nadmin.enableServer=false\nmaxSessionTimeout=60000\n")
    log = open(directory / "zookeeper.log", "ab")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen([script, "start-foreground", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={"PATH": "/usr/bin:/bin", "ZOO_LOG_DIR": str(directory)})
    log.close()
    wait_port(port, 60, proc, address)
    return proc


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
    zk_port = free_port()
    zk = start_zookeeper(directory / "zookeeper", zk_port, tick_ms=2000)
    state: dict[str, Any] = {"zookeeper": {"pid": zk.pid, "port": zk_port}, "hosts": []}
    zookeeper = f"127.0.0.1:{zk_port}"
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
    _signal_and_wait(state["zookeeper"]["pid"], 10)
    state_file.unlink()
    print(f"stopped {len(state['hosts'])} host(s) and ZooKeeper")
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("cluster", help="start or stop a local cluster of pyk hosts with ZooKeeper")
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start ZooKeeper and --hosts pyk hosts")
    up.add_argument("--hosts", type=int, default=3)
    up.add_argument("--shards", type=int, default=1, help="shards (nodes) per host")
    up.add_argument("--dir", default=DEFAULT_DIR, help="data, logs and state of the cluster")
    down = actions.add_parser("down", help="stop the cluster started by `up`")
    down.add_argument("--dir", default=DEFAULT_DIR)


def run(args: argparse.Namespace) -> int:
    return _up(args) if args.action == "up" else _down(args)
