"""Fixtures of the Java suites: the test programs of tests/java/src, compiled once per session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.kafka import java_lib

SOURCES = Path(__file__).resolve().parent / "src"


@pytest.fixture(scope="session")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/java/src/*.java compiled with javac against Kafka's jars into a directory of classes."""
    out = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(p) for p in SOURCES.glob("*.java"))
    done = subprocess.run(
        ["javac", "-nowarn", "-encoding", "UTF-8", "-d", str(out), "-cp", f"{java_lib()}/*", *sources],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"javac failed:\n{done.stdout}\n{done.stderr}"
    return out
