"""A long-running Java program of a test (a Streams application, a Connect worker, MirrorMaker 2).

Owns `JavaProcess`: `java -cp <classes>:<Kafka's jars> <main> args...` in its own process group,
its stdout and stderr appended to one log file (with a banner per start) for the failure report,
stopped with SIGTERM (Kafka's shutdown hooks run) or killed with SIGKILL as a crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import LOG_TAIL_BYTES, REPO
from tests.kafka import java_command

# One long-lived JVM of a test: a small heap, the serial collector (2 shared cores).
SERVICE_JVM = ("-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k")


@dataclass
class JavaProcess:
    """One Java program started (and restarted) by a test; `log_file` holds every run's output."""

    main_class: str
    args: tuple[str, ...]
    log_file: Path
    classpath: tuple[Path, ...] = ()
    jvm: tuple[str, ...] = SERVICE_JVM
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> JavaProcess:
        assert not self.running, f"{self.main_class} already running"
        self.runs += 1
        cmd = java_command(self.main_class, *self.args, jvm=self.jvm, classpath=self.classpath)
        with open(self.log_file, "ab") as log:
            log.write(f"\n===== pyk-tests: start #{self.runs}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, so the program closes its clients; SIGKILL when it does not exit in time."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        text = self.log_text()
        return text if len(text) <= nbytes else "[...]\n" + text[-nbytes:]

    def wait_for_line(self, text: str, timeout: float, after: int = 0) -> None:
        """Waits until `text` appears in the log past character `after`; fails with the log if the
        program exits or the deadline passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[after:]:
                return
            if not self.running:
                raise AssertionError(f"{self.main_class} exited before {text!r}\n{self.log_tail()}")
            time.sleep(0.2)
        raise AssertionError(f"{self.main_class}: no {text!r} after {timeout}s\n{self.log_tail()}")
