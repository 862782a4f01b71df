"""Fixtures of the Java suites: the test programs of tests/java/src, compiled once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.java.javac import all_sources, compile_java


@pytest.fixture(scope="session")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The class directory of every program under tests/java/src (one javac run)."""
    return compile_java(all_sources(), Path(tmp_path_factory.mktemp("java-classes")))
