"""Kernel TLS end to end, for a machine whose kernel has TLS (the `tls` module; e.g. Debian's 6.1
in a VM): not collected by the default run (the name does not start with test_), run it as

    python3 -m pytest -q -p no:cacheprovider tests/security/guest_kernel_tls.py

A one-shard broker with an SSL listener takes ~10 MB produced by confluent-kafka over SSL, which
reads all of it back (TLS 1.3), and kafka-python the first 1 MB over TLS 1.3 ChaCha20-Poly1305 and TLS 1.2 AES-128-GCM (with TLS 1.3's default
AES-256-GCM, each cipher type the kernel takes, in both versions).  It checks the records, that
start-up said kernel TLS, that every SSL connection's sending went to the kernel (one debug line
each, none stayed in user space), that the kernel counted the sessions (/proc/net/tls_stat
TlsTxSw), and that the fetched segment bytes went out by sendfile under kernel TLS (the
connections' "kernel TLS sent N bytes of segment regions" lines add up to at least what the
consumers read)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyk.server.security.ktls import kernel_tls_missing
from tests.helpers import wait_for
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.pki import Pki
from tests.security.test_kernel_tls import (
    HANDSHAKE_LINE,
    KERNEL_LINE,
    REGION_LINE,
    USER_SPACE_LINE,
    every_client_reads,
)

RECORDS = 1_000
VALUE_SIZE = 10_000  # 1000 x 10 kB: ~10 MB
LEG_RECORDS = 100  # ~1 MB per further suite
START_TIMEOUT_S = 300  # an emulated CPU (tests/security/vm.py) starts Python slowly
TLS_STAT = Path("/proc/net/tls_stat")
# Besides TLS 1.3's default (AES-256-GCM): one suite of each other cipher type the kernel takes,
# in each version (the keys of all six are checked against OpenSSL in test_kernel_tls.py).
SUITES = [("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"), ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")]


def _tls_tx_sessions() -> int:
    """The kernel's count of software TLS sending sessions ever set up (TlsTxSw)."""
    for line in TLS_STAT.read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "TlsTxSw":
            return int(value)
    raise AssertionError(f"no TlsTxSw in {TLS_STAT}")


@pytest.fixture(scope="module", autouse=True)
def _kernel_has_tls() -> None:
    missing = kernel_tls_missing()
    assert missing is None, f"this test needs a kernel with TLS (CONFIG_TLS, modprobe tls): {missing}"


@pytest.fixture(scope="module")  # module-wide, as tests/conftest.py's traceback check expects of `broker`
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    b = secure_broker(tmp_path_factory.mktemp("pyk-ktls"), pki, log_level="DEBUG", shards=1)
    b.start(timeout=START_TIMEOUT_S)
    try:
        yield b
    finally:
        stop_and_check(b)


@pytest.mark.timeout(1200)  # an emulated CPU
def test_fetches_under_kernel_tls_are_zero_copy(broker: SecureBroker, pki: Pki,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    sessions_before = _tls_tx_sessions()
    legs = every_client_reads(broker, pki, tmp_path_factory.mktemp("clients"), records=RECORDS,
                              value_size=VALUE_SIZE, leg_records=LEG_RECORDS, timeout=300, suites=SUITES)
    read = (RECORDS + len(SUITES) * LEG_RECORDS) * VALUE_SIZE  # values only: a lower bound
    # Every consumer closed its connections: each kernel-TLS connection logged its region bytes.
    text = wait_for(lambda: broker.log_text() if sum(int(n) for n in REGION_LINE.findall(broker.log_text())) >= read
                    else None, timeout=60, what=f"kernel-TLS connections' region bytes adding up to {read}")
    assert "TLS listeners SSL, MTLS, SASL_SSL: kernel TLS (fetches zero-copy)" in text
    kernel = KERNEL_LINE.findall(text)
    assert USER_SPACE_LINE not in text, [line for line in text.splitlines() if USER_SPACE_LINE in line]
    assert len(kernel) >= len(HANDSHAKE_LINE.findall(text)) > 0
    assert set(kernel) >= legs, sorted(legs - set(kernel))
    assert _tls_tx_sessions() - sessions_before >= len(kernel)
