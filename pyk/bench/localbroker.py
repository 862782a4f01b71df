"""A local `pyk serve` the bench starts itself (`--start-broker`, and broker-key sweeps).

Owns one broker subprocess at a time: an ephemeral loopback port, a fresh temporary log
directory per start (each sweep point measures an empty broker), `--override key=value` for
every broker setting, readiness by an ApiVersions round trip, SIGTERM on stop.  Its pid (and
its children's, for a multi-process broker) feed the broker CPU figure.
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api_versions_ok(port: int) -> bool:
    """One ApiVersions v0 round trip, packed by hand (no event loop needed here)."""
    body = struct.pack(">hhih", 18, 0, 1, 9) + b"pyk-bench"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(4)
            return len(head) == 4
    except OSError:
        return False


class LocalBroker:
    """One `python -m pyk serve` subprocess on 127.0.0.1.

    Lifecycle: `start(overrides)` -> `stop()` -> `start(other overrides)` ...; each start gets a
    new port and an empty log directory, removed on stop.  The broker's output goes to
    `log_file` (kept after stop, for post-mortems)."""

    def __init__(self, overrides: dict[str, str] | None = None, workdir: str | None = None) -> None:
        self.base_overrides = dict(overrides or {})
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pyk-bench-broker-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.data: Path | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def start(self, overrides: dict[str, str] | None = None) -> LocalBroker:
        self.stop()
        self.starts += 1
        # A multi-shard broker listens on port, port+1, ...: leave room above the port.
        for _ in range(20):
            self.port = free_port()
            if all(_free(self.port + i) for i in range(1, 9)):
                break
        self.data = self.workdir / f"data-{self.starts}"
        self.data.mkdir(parents=True)
        # The metrics endpoint stays on (as deployed), on a free port: benchmarks may run side by side.
        conf = {"metrics.listener": f"127.0.0.1:{free_port()}", **self.base_overrides, **(overrides or {})}
        cmd = [sys.executable, "-m", "pyk", "serve",
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
               "--override", f"log.dirs={self.data}"]  # fmt: skip
        for key, value in conf.items():
            cmd += ["--override", f"{key}={value}"]
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== start {self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pyk serve exited with code {self.proc.returncode}; see {self.log_file}")
            if _api_versions_ok(self.port):
                time.sleep(0.2)  # a multi-shard broker may still be bringing up its other shards
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pyk serve did not answer within {READY_TIMEOUT_S:.0f} s; see {self.log_file}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
