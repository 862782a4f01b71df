"""Fixtures of the consumer-group suites.

`gbroker`: one `pyk serve` per test module, tuned so that groups move fast: no initial
rebalance delay, session timeouts down to 500 ms allowed, a small `__consumer_offsets` (4
partitions, so its creation is quick), and for consumer-protocol (KIP-848) members a 500 ms
heartbeat interval and a 4 s session.  Tests that restart or kill the broker use the shared
`broker_factory` fixture with `GROUP_OVERRIDES`.  `members` starts consumer processes
(tests/groups/member.py) and stops whatever is left of them after the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, BrokerProcess, ExternalBroker

GROUP_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
    "offsets.topic.num.partitions": "4",
    # KIP-848 members take these from the broker (tests/groups/test_consumer_protocol.py).
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.session.timeout.ms": "4000",
}


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess | ExternalBroker]:
    external = os.environ.get("PYK_TEST_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    b = BrokerProcess(Path(tmp_path_factory.mktemp("pyk-groups")), dict(GROUP_OVERRIDES))
    b.start()
    try:
        yield b
    finally:
        code = b.stop() if b.running else 0
        text = b.log_text()
        assert code == 0, f"pyk serve exited with {code}\n{b.log_tail()}"
        assert "Traceback (most recent call last)" not in text, f"pyk serve logged a traceback:\n{b.log_tail()}"


class Member:
    """A consumer-group member process (tests/groups/member.py) and the events it wrote."""

    def __init__(self, out: Path, args: list[str]) -> None:
        self.out = out
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.groups.member", "--out", str(out), *args],
                                     cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(str(out) + ".stderr", "ab"))  # noqa: SIM115

    def events(self) -> list[dict[str, Any]]:
        import json

        try:
            text = self.out.read_text()
        except FileNotFoundError:
            return []
        # The member may be writing a line right now: only newline-terminated lines are complete.
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def messages(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["ev"] == "msg"]

    def owned(self) -> set[int]:
        """Partitions owned now, replaying assign/revoke/lost events (eager or incremental)."""
        owned: set[int] = set()
        joined = " ".join(self.args)
        eager = "cooperative" not in joined and "--protocol consumer" not in joined  # KIP-848 is incremental
        for e in self.events():
            if e["ev"] == "assign":
                owned = set(e["parts"]) if eager else owned | set(e["parts"])
            elif e["ev"] in ("revoke", "lost"):
                owned -= set(e["parts"])
        return owned

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"member ignored SIGTERM for {timeout}s") from None
        return self.proc.returncode

    def stderr(self) -> str:
        try:
            return Path(str(self.out) + ".stderr").read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Members:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.all: list[Member] = []

    def start(self, bootstrap: str, group: str, topic: str, client: str = "confluent", **opts: Any) -> Member:
        args = ["--client", client, "--bootstrap", bootstrap, "--group", group, "--topic", topic]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        member = Member(self.tmp / f"member-{len(self.all)}.jsonl", args)
        self.all.append(member)
        return member


@pytest.fixture
def members(tmp_path: Path) -> Iterator[Members]:
    m = Members(tmp_path)
    try:
        yield m
    finally:
        for member in m.all:
            if member.proc.poll() is None:
                member.proc.kill()
                member.proc.wait()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05, detail: Any = None) -> Any:
    """Polls predicate() until truthy; on timeout fails naming `what` (and `detail()`, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    extra = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")


def describe_members(ms: list[Member]) -> str:
    """What each member owns and its last events, for failure messages."""
    out = []
    for i, m in enumerate(ms):
        events = [e for e in m.events() if e["ev"] != "msg"]
        out.append(f"member {i} ({' '.join(m.args[:2])}) alive={m.proc.poll() is None} owns {sorted(m.owned())} "
                   f"consumed {len(m.messages())}; last events {events[-6:]}; stderr tail {m.stderr()[-1500:]!r}")
    return "\n".join(out)
