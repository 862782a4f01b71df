"""Compiles the Java programs of the Java suites (tests/java/src/) against Kafka's jars.

Owns `compile_java()`: one `javac` run over a set of `.java` files into a class directory, with
Kafka's jars (`java_lib()`) on the class path; a compile error fails the test with javac's output.
The session fixture `java_classes` (tests/java/conftest.py) compiles all of tests/java/src once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from tests.kafka import java_lib

SOURCES = Path(__file__).resolve().parent / "src"
JAVAC_TIMEOUT_S = 180.0  # one javac JVM for every source, on 2 shared cores


def compile_java(sources: Iterable[Path], out: Path) -> Path:
    """Compiles `sources` into `out` (created); returns `out`, the class path entry to add."""
    files = sorted(str(p) for p in sources)
    assert files, "no Java sources to compile"
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["javac", "-nowarn", "-encoding", "UTF-8", "-d", str(out), "-cp", f"{java_lib()}/*", *files],
        capture_output=True, text=True, timeout=JAVAC_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"javac exited with {done.returncode}\n{done.stdout}\n{done.stderr}")
    return out


def all_sources() -> list[Path]:
    """Every `.java` file under tests/java/src."""
    return sorted(SOURCES.rglob("*.java"))
