"""Shared pytest configuration for pyk's tests."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Native extension guard (owner: ext/ / pyk._native)
#
# An unbuilt or stale pyk._native is a start-up error, never a silent fallback (STYLE
# practice 6): the whole run stops before collecting anything when the compiled module is
# missing, is not an extension module, or is older than one of its ext/ sources.
# ---------------------------------------------------------------------------------------
import importlib.machinery
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_NATIVE_SOURCES = ("*.pyx", "*.pxd", "*.pxi", "include/*.h", "c/*.c", "c/*.h", "pyk/*.pxd")
_REBUILD = "rebuild with `pip install -e .` (or `python setup.py build_ext --inplace`)"


def _native_problem() -> str | None:
    try:
        import pyk._native as native
    except ImportError as exc:
        return f"pyk._native is not built ({exc}); {_REBUILD}"
    path = Path(native.__file__ or "")
    if not path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return f"pyk._native resolves to {path}, not a compiled extension; {_REBUILD}"
    sources = [p for pattern in _NATIVE_SOURCES for p in (_ROOT / "ext").glob(pattern)]
    built = path.stat().st_mtime
    stale = sorted(str(p.relative_to(_ROOT)) for p in sources if p.stat().st_mtime > built)
    if stale:
        return f"pyk._native ({path}) is older than {', '.join(stale)}; {_REBUILD}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    problem = _native_problem()
    if problem:
        raise pytest.UsageError(problem)


# ---------------------------------------------------------------------------------------
# End of the native extension guard.
# ---------------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `first` go to the front: pytest-xdist hands files out in collection order, and
    a test of minutes handed out last would hold the whole run up at its end."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)


# ---------------------------------------------------------------------------------------
# Broker fixtures (owner: real-client suites tests/clients, tests/durability, tests/adversity)
#
# `broker`: one real `pyk serve` subprocess per test module (default configuration, ephemeral
# port, its own log.dirs).  `broker_factory`: brokers with a test's own `--override`s, which the
# test may stop, kill -9 and restart.  `topic`: a name unique to the test.  The log of every
# broker a failing test used is attached to its report.  PYK_TEST_BOOTSTRAP=host:port points
# `broker` at a broker started elsewhere (to check the tests themselves against another
# Kafka-protocol broker); `broker_factory` tests are then skipped.  See tests/helpers.py.
# ---------------------------------------------------------------------------------------
import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from tests.helpers import TEST_SHARDS, BrokerProcess, ExternalBroker, unique_topic  # noqa: E402
from tests.kafka import ApacheKafka  # noqa: E402

_EXTERNAL_BOOTSTRAP = os.environ.get("PYK_TEST_BOOTSTRAP")


_TRACEBACK = "Traceback (most recent call last)"


def _new_traceback(b: BrokerProcess) -> str | None:
    """A traceback the broker logged since the last check (a bug: tier-c error), with context."""
    text = b.log_text()
    start, b.log_checked = b.log_checked, len(text)
    first = text.find(_TRACEBACK, start)
    if first < 0:
        return None
    return text[max(start, first - 2000) : first + 6000]


def _stop_and_check(b: BrokerProcess) -> None:
    """Stops a broker at fixture teardown: a bad exit code or a traceback in its log fails the test."""
    if b.running:
        code = b.stop()
        assert code == 0, f"pyk serve exited with code {code} on SIGTERM\n{b.log_tail()}"
    tb = _new_traceback(b)
    if tb:
        pytest.fail(f"pyk serve logged a traceback (a bug, tier-c error):\n{tb}")


@pytest.fixture(autouse=True)
def _broker_tracebacks_fail_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test during which the module's broker logged a traceback, so the blame lands on it
    (a `broker_factory` broker is checked when the factory stops it at the end of its test)."""
    yield
    if "broker" in request.fixturenames:
        b = request.getfixturevalue("broker")
        tb = _new_traceback(b) if isinstance(b, BrokerProcess) else None
        if tb:
            pytest.fail(f"pyk serve logged a traceback during this test (a bug, tier-c error):\n{tb}")


def _prop(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class BrokerFactory:
    """Starts brokers with extra `--override`s for one test; the fixture stops them all afterwards."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self.brokers: list[BrokerProcess] = []

    def __call__(
        self, start: bool = True, overrides: dict[str, Any] | None = None, log_level: str = "INFO", **keys: Any
    ) -> BrokerProcess:
        """A new broker: `factory(message_max_bytes=3145728)` ('_' stands for '.') or `overrides={...}`."""
        conf = {k.replace("_", "."): _prop(v) for k, v in keys.items()}
        conf.update({k: _prop(v) for k, v in (overrides or {}).items()})
        shards = int(conf.pop("num.shards", TEST_SHARDS))
        b = BrokerProcess(Path(self._tmp.mktemp("pyk-broker")), conf, shards=shards, log_level=log_level)
        self.brokers.append(b)
        return b.start() if start else b


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess | ExternalBroker]:
    """One broker with the default configuration, shared by the tests of a module."""
    if _EXTERNAL_BOOTSTRAP:
        yield ExternalBroker(_EXTERNAL_BOOTSTRAP)
        return
    b = BrokerProcess(Path(tmp_path_factory.mktemp("pyk-broker")))
    b.start()
    try:
        yield b
    finally:
        _stop_and_check(b)


@pytest.fixture
def broker_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerFactory]:
    """Brokers of this test's own configuration; needs a local pyk (skipped with PYK_TEST_BOOTSTRAP)."""
    if _EXTERNAL_BOOTSTRAP:
        pytest.skip("needs its own pyk process (PYK_TEST_BOOTSTRAP points at an external broker)")
    factory = BrokerFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        for b in factory.brokers:
            _stop_and_check(b)


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (derived from its name)."""
    return unique_topic(request.node.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attaches the log of every broker a failing test used to its report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for name, value in getattr(item, "funcargs", {}).items():
        brokers = value.brokers if isinstance(value, BrokerFactory) else [value]
        for i, b in enumerate(brokers):
            if isinstance(b, BrokerProcess):
                report.sections.append(
                    (f"pyk serve log: {name}[{i}] {b.bootstrap} ({b.log_file})", b.log_tail())
                )


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """One real Apache Kafka (KRaft, tests/kafka.py) for the whole run: the reference peer."""
    k = ApacheKafka(Path(tmp_path_factory.mktemp("apache-kafka")))
    k.start()
    try:
        yield k
    finally:
        k.stop()


# ---------------------------------------------------------------------------------------
# End of the broker fixtures.
# ---------------------------------------------------------------------------------------
