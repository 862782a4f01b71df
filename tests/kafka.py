"""The Java side of the tests: Kafka's jars, Java programs on them, and Apache Kafka itself.

Owns:
* `java_lib()`: the directory `ci/install.sh --test` fills with the jars of ci/java/pom.xml
  (Kafka's client, tools, Streams, Connect, broker). A missing directory fails the test that
  needs it with the command to run: the Java tests are never skipped silently.
* `run_java()`: one `java -cp <jars> <main class> args...` run to completion (Kafka's tools, such as
  `org.apache.kafka.tools.TopicCommand`), with a timeout and its output for the failure report.
* `ApacheKafka`: a real single-node Apache Kafka 4.x in KRaft mode (combined broker and controller,
  `StorageTool format` then `kafka.Kafka`) on free loopback ports with its own data directory:
  the reference that differential tests and benchmarks hold pyk against.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import LOG_TAIL_BYTES, REPO, api_versions_probe, free_port

POM = REPO / "ci" / "java" / "pom.xml"
LOG4J_CONFIG = REPO / "ci" / "java" / "log4j2.properties"
KAFKA_START_TIMEOUT_S = 90.0  # a JVM plus KRaft's first election, on 2 shared cores
KAFKA_HEAP = "-Xmx1g"  # the smallest sensible heap for this machine (bench/README.md)


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert match, f"no kafka.version in {POM}"
    return match.group(1)


def java_lib() -> Path:
    """The jar directory, as ci/common.sh's java_lib names it; fails when it was never fetched."""
    default = Path.home() / ".cache" / "pyk" / "java" / f"kafka-{kafka_version()}"
    lib = Path(os.environ.get("PYK_JAVA_LIB", default))
    if not (lib / ".pom.sha256").is_file():
        raise AssertionError(f"Kafka's jars are not in {lib}: run `ci/install.sh --test` first")
    return lib


# Short-lived tools start fastest with one GC thread and the client compiler only.
TOOL_JVM = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def java_command(
    main_class: str, *args: str, jvm: tuple[str, ...] = TOOL_JVM, classpath: tuple[Path, ...] = ()
) -> list[str]:
    """`java` with `classpath` then Kafka's jars on the class path and warnings-only logging."""
    return [
        "java", *jvm, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", os.pathsep.join([*map(str, classpath), f"{java_lib()}/*"]), main_class, *args,
    ]  # fmt: skip


def run_java(
    main_class: str, *args: str, timeout: float = 120.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Runs a Java main class to completion; with `check`, a non-zero exit fails with its output."""
    done = subprocess.run(
        java_command(main_class, *args), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(
            f"{main_class} {' '.join(args)} exited with {done.returncode}\n"
            f"stdout:\n{done.stdout[-LOG_TAIL_BYTES:]}\nstderr:\n{done.stderr[-LOG_TAIL_BYTES:]}"
        )
    return done


@dataclass
class ApacheKafka:
    """Apache Kafka in KRaft mode on 127.0.0.1:`port` (controller on `controller_port`).

    `overrides` are server.properties lines on top of a single-node setup (internal topics with
    one replica, no initial rebalance delay, as a developer's single broker has them).
    """

    workdir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    port: int = 0
    controller_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "kafka.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(self.overrides)
        return props

    def start(self, timeout: float = KAFKA_START_TIMEOUT_S) -> ApacheKafka:
        """Formats the data directory on first start, starts the broker, and returns once it
        answers ApiVersions."""
        assert not self.running, "Apache Kafka already running"
        config = self.workdir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        if not (self.log_dir / "meta.properties").exists():
            cluster_id = uuid.uuid4().bytes.hex()[:22]
            run_java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), timeout=120)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                java_command("kafka.Kafka", str(config), jvm=(KAFKA_HEAP, "-XX:+UseG1GC")),
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"Apache Kafka exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                api_versions_probe("127.0.0.1", self.port)
                return self
            except OSError:
                time.sleep(0.1)
        self.kill9()
        raise AssertionError(f"Apache Kafka not ready after {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text if len(text) <= nbytes else "[...]\n" + text[-nbytes:]
