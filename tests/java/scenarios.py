"""The client programs of tests/java/src/clients: each prints JSON lines the tests assert on.

`run_scenarios` runs a program to completion and returns its scenario lines by name (one JVM for a
group of scenarios); `InteractiveJava` is a long-running program driven by commands on its stdin
(the group members of test_java_groups.py), whose lines are collected as they come.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.helpers import LOG_TAIL_BYTES, REPO, wait_for
from tests.kafka import java_command

# The JVM of a scenario program: a small heap, but room for the several-MiB records it sends.
SCENARIO_JVM = ("-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def run_scenarios(classes: Path, main: str, *args: str, timeout: float = 240.0) -> dict[str, dict[str, Any]]:
    """Runs `main` to completion; its JSON lines by their "scenario" name. A non-zero exit fails."""
    done = subprocess.run(
        java_command(main, *args, jvm=SCENARIO_JVM, classpath=(classes,)), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, f"{main} exited with {done.returncode}\n{done.stdout}\n{done.stderr[-LOG_TAIL_BYTES:]}"
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {line["scenario"]: line for line in lines}


def ok(results: dict[str, dict[str, Any]], scenario: str) -> dict[str, Any]:
    """One scenario's result, failing with the Java stack trace when it ended with an exception."""
    assert scenario in results, f"no result for {scenario}: {sorted(results)}"
    result = results[scenario]
    assert "error" not in result, f"{scenario}: {result['error']}\n{result.get('trace', '')}"
    return result


class InteractiveJava:
    """A Java program reading commands (one per line) on stdin and printing JSON lines on stdout."""

    def __init__(self, classes: Path, main: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            java_command(main, *args, jvm=SCENARIO_JVM, classpath=(classes,)), cwd=REPO, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._lock:
                    self.lines.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """The lines so far whose fields equal `match`."""
        with self._lock:
            return [e for e in self.lines if all(e.get(k) == v for k, v in match.items())]

    def send(self, *words: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()

    def wait_event(self, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """The first line matching `match`, waiting for it; fails with the program's output."""
        found = wait_for(lambda: self.events(**match), timeout=timeout, what=f"{match} (stderr: {self.tail()})")
        return found[0]  # type: ignore[no-any-return]

    def tail(self) -> str:
        return "".join(self.stderr)[-LOG_TAIL_BYTES:]

    def close(self, timeout: float = 30.0) -> int:
        """Asks the program to quit (stdin closed), killing it if it does not."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
