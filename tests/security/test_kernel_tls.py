"""Kernel TLS keys (pyk/server/security/ktls.py), checked without a kernel that has TLS: a server
SSLObject and an ssl client shake hands in memory, the server's sending keys are derived from its
context's key log and packed as the kernel's crypto info, then the record the server SSLObject
encrypts next is opened with that struct read by the kernel's rules (cryptography's AEADs) -
which proves key, IV / salt and record sequence for every suite the kernel takes.

TLS 1.3 suites cannot be chosen through Python's ssl: each runs in a child process whose OpenSSL
config (OPENSSL_CONF) offers only that suite.

Then the broker, with real clients over every suite: on a kernel without TLS,
PYK_ASSUME_KERNEL_TLS=1 makes the listener prepare each connection for the kernel, which refuses
the keys, so every connection must say it derived them and fell back to user space, and the
records arrive whole.  tests/security/guest_kernel_tls.py runs the same clients, ~50 MB, on a
kernel with TLS (a VM)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from pyk.server.security.ktls import (
    KeyLog,
    Unsupported,
    client_hello_random,
    server_hello_random,
    tx_crypto_info,
)
from tests.helpers import (
    confluent_consume,
    confluent_produce,
    create_topic,
    kafka_python_consume,
    make_records,
    wait_for,
)
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.pki import KEY_PASSWORD, Pki

ROOT = Path(__file__).resolve().parents[2]
_KERNEL_SIZES = {51: (8, 16, 4), 52: (8, 32, 4), 54: (12, 32, 0)}  # cipher_type: iv, key, salt (linux/tls.h)
_APPLICATION_DATA = 23
_TAG = 16
PAYLOAD = b"fetch response bytes " * 50
TLS12_SUITES = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]
TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
# What a kernel-TLS listener says about each connection once its handshake is done (pyk.server.security.tls).
KERNEL_LINE = re.compile(r"connection \S+: (TLSv1\.[23]) (\S+) sent by kernel TLS")
REFUSED_LINE = re.compile(r"connection \S+: (TLSv1\.[23]) (\S+) stays in user-space TLS: the kernel refused its keys")
USER_SPACE_LINE = "stays in user-space TLS"
HANDSHAKE_LINE = re.compile(r"connection \S+: TLSv1\.[23] on listener SSL,")
REGION_LINE = re.compile(r"kernel TLS sent (\d+) bytes of segment regions with sendfile")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def open_record(crypto_info: bytes, record: bytes) -> bytes:
    """The plaintext of the server's next record, opened as the kernel would seal it with
    `crypto_info` (struct tls12_crypto_info_*: version, cipher_type, iv, key, salt, rec_seq)."""
    version, cipher_type = struct.unpack_from("=HH", crypto_info)
    iv_size, key_size, salt_size = _KERNEL_SIZES[cipher_type]
    fields = crypto_info[4:]
    iv, key = fields[:iv_size], fields[iv_size : iv_size + key_size]
    salt = fields[iv_size + key_size : iv_size + key_size + salt_size]
    rec_seq = fields[iv_size + key_size + salt_size :]
    assert len(rec_seq) == 8
    header, body = record[:5], record[5:]
    assert header[0] == _APPLICATION_DATA and struct.unpack(">H", header[3:5])[0] == len(body)
    aead = ChaCha20Poly1305(key) if cipher_type == 54 else AESGCM(key)
    sequence_nonce = bytes(4) + rec_seq
    if version == 0x0304:  # RFC 8446 5.3: write_iv XOR sequence; the header is the additional data
        inner = aead.decrypt(_xor(salt + iv, sequence_nonce), body, header).rstrip(b"\x00")
        assert inner[-1] == _APPLICATION_DATA
        return inner[:-1]
    assert version == 0x0303
    if cipher_type == 54:  # RFC 7905: iv XOR sequence, no explicit nonce
        nonce, ciphertext = _xor(iv, sequence_nonce), body
    else:  # RFC 5288: salt + the record's explicit nonce
        nonce, ciphertext = salt + body[:8], body[8:]
    aad = rec_seq + header[:3] + struct.pack(">H", len(ciphertext) - _TAG)
    return aead.decrypt(nonce, ciphertext, aad)


def _contexts(keystore: str, version: str, suite: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(keystore, password=KEY_PASSWORD)
    server.num_tickets = 0  # as a kernel-TLS listener's context
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    if version == "TLSv1.2":
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(suite)
    return server, client


@dataclass
class Handshake:
    """Both ends of a finished in-memory handshake and what the server's connection learnt."""

    server: ssl.SSLObject
    client: ssl.SSLObject
    to_client: ssl.MemoryBIO  # the server's outgoing records
    to_server: ssl.MemoryBIO
    from_server: ssl.MemoryBIO  # the client's incoming records
    client_random: bytes | None = None
    server_random: bytes | None = None
    secrets: dict[str, bytes] = field(default_factory=dict)


def handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext, key_log: KeyLog | None,
              session: ssl.SSLSession | None = None) -> Handshake:
    """Shakes hands in memory as a TlsConnection would see it: the randoms from the first bytes
    each way, the key log's lines for its client random after each server step (none taken
    without `key_log`).  Nothing is read from the key log later: the keys derived from what it
    held show that CPython flushes each line as the handshake writes it."""
    bios = [ssl.MemoryBIO() for _ in range(4)]
    s_in, s_out, c_in, c_out = bios
    h = Handshake(server_context.wrap_bio(s_in, s_out, server_side=True),
                  client_context.wrap_bio(c_in, c_out, session=session), s_out, s_in, c_in)
    done = False
    for _ in range(4):
        try:
            h.client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = c_out.read()
        h.client_random = h.client_random or client_hello_random(flight)
        s_in.write(flight)
        if not done:
            try:
                h.server.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                pass
            if key_log is not None:
                h.secrets.update(key_log.take(h.client_random))
        flight = s_out.read()
        h.server_random = h.server_random or server_hello_random(flight)
        c_in.write(flight)
    assert done and h.client_random is not None and not s_out.pending
    return h


def check_suite(keystore: str, version: str, suite: str, resume: bool = False) -> None:
    """Handshake in memory, derive the server's crypto info from the key log, open its next record;
    with `resume`, a second handshake resumes the first one's session (TLS 1.2: session id)."""
    server_context, client_context = _contexts(keystore, version, suite)
    key_log = KeyLog(server_context)
    session = None
    for _ in range(2 if resume else 1):
        h = handshake(server_context, client_context, key_log, session)
        server = h.server
        assert (server.version(), server.cipher()[0]) == (version, suite), (server.version(), server.cipher())
        assert server.session_reused == (session is not None)
        assert h.client_random is not None
        crypto_info = tx_crypto_info(server.version(), suite, h.secrets, h.client_random, h.server_random)
        server.write(PAYLOAD)
        record = h.to_client.read()
        assert open_record(crypto_info, record) == PAYLOAD
        h.from_server.write(record)
        assert h.client.read(len(PAYLOAD)) == PAYLOAD
        session = h.client.session


@pytest.mark.parametrize("suite", TLS12_SUITES)
def test_tls12_keys_open_the_servers_next_record(pki: Pki, suite: str) -> None:
    check_suite(pki.keystore, "TLSv1.2", suite)


def test_tls12_resumed_session_keys_open_the_servers_next_record(pki: Pki) -> None:
    """An abbreviated handshake (the server's Finished goes first) also leaves sequence 1."""
    check_suite(pki.keystore, "TLSv1.2", TLS12_SUITES[0], resume=True)


def run_with_suite(code: str, version: str, suite: str, workdir: Path, timeout: float = 120) -> str:
    """Runs `code` in a child Python (cwd: the repository) whose OpenSSL offers only `suite` for TLS
    1.3 (OPENSSL_CONF; TLS 1.2 suites are chosen with set_ciphers); returns its stdout."""
    env = dict(os.environ)
    if version == "TLSv1.3":
        conf = workdir / f"openssl-{suite}.cnf"
        conf.write_text("openssl_conf = pyk_conf\n[pyk_conf]\nssl_conf = pyk_ssl\n[pyk_ssl]\n"
                        f"system_default = pyk_tls\n[pyk_tls]\nCiphersuites = {suite}\n")
        env["OPENSSL_CONF"] = str(conf)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_tls13_keys_open_the_servers_next_record(pki: Pki, suite: str, tmp_path: Path) -> None:
    run_with_suite("from tests.security.test_kernel_tls import check_suite; "
                   f"check_suite({pki.keystore!r}, 'TLSv1.3', {suite!r})", "TLSv1.3", suite, tmp_path)


def test_key_log_gives_each_session_only_its_own_lines(pki: Pki) -> None:
    """Lines of a handshake nobody took (a failed one) are dropped, not handed to the next."""
    server_context, client_context = _contexts(pki.keystore, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    key_log = KeyLog(server_context)
    randoms = [handshake(server_context, client_context, None).client_random for _ in range(2)]
    first, second = randoms
    assert first is not None and second is not None and first != second
    assert list(key_log.take(second)) == ["CLIENT_RANDOM"]
    assert key_log.take(first) == {}


def test_other_suites_and_versions_stay_in_user_space() -> None:
    with pytest.raises(Unsupported, match="cipher suite"):
        tx_crypto_info("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256", {"CLIENT_RANDOM": bytes(48)}, bytes(32), bytes(32))
    with pytest.raises(Unsupported, match="cipher suite"):
        tx_crypto_info("TLSv1.3", "TLS_AES_128_CCM_SHA256", {}, bytes(32), None)
    with pytest.raises(Unsupported, match="version"):
        tx_crypto_info("TLSv1.1", "ECDHE-ECDSA-AES128-GCM-SHA256", {}, bytes(32), None)
    with pytest.raises(Unsupported, match="SERVER_TRAFFIC_SECRET_0"):
        tx_crypto_info("TLSv1.3", "TLS_AES_128_GCM_SHA256", {}, bytes(32), None)


def test_hello_randoms_need_the_whole_header() -> None:
    hello = bytes([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]) + bytes(range(32))
    assert client_hello_random(hello) == bytes(range(32))
    assert client_hello_random(hello[:-1]) is None
    assert server_hello_random(hello) is None  # a ClientHello is no ServerHello
    assert client_hello_random(b"\x00" * 5 + b"\x04\x00\x00\x0c" + bytes(40)) is None  # not a handshake record


# Real clients against a broker --------------------------------------------------------------------
def digest(values: list[bytes | None]) -> str:
    return hashlib.sha256(b"".join(v or b"" for v in values)).hexdigest()


def kafka_python_over(bootstrap: str, topic: str, count: int, ca: str, version: str, suite: str,
                      timeout: float) -> None:
    """A kafka-python consumer of the first `count` records over `version` with `suite` (the child
    process of `kafka_python_leg`); prints how many arrived and their values' digest."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version.replace(".", "_"))
    if version == "TLSv1.2":
        context.set_ciphers(suite)
    got = kafka_python_consume(bootstrap, topic, count=count, timeout=timeout, security_protocol="SSL",
                               ssl_context=context)
    print(json.dumps({"count": len(got), "digest": digest([r.value for r in got])}))


def kafka_python_leg(broker: SecureBroker, pki: Pki, topic: str, count: int, version: str, suite: str,
                     workdir: Path, timeout: float = 60) -> dict[str, object]:
    code = ("from tests.security.test_kernel_tls import kafka_python_over; "
            f"kafka_python_over({broker.bootstrap_of('SSL')!r}, {topic!r}, {count}, {pki.ca!r}, {version!r}, "
            f"{suite!r}, {timeout})")
    result: dict[str, object] = json.loads(run_with_suite(code, version, suite, workdir, timeout=timeout + 60))
    return result


def every_client_reads(broker: SecureBroker, pki: Pki, workdir: Path, records: int, value_size: int,
                       leg_records: int, timeout: float,
                       suites: list[tuple[str, str]] | None = None) -> set[tuple[str, str]]:
    """Produces `records` over SSL with confluent-kafka and reads them all back with it (TLS 1.3,
    its default suite); then, by default, kafka-python reads them all over the same suite and the
    first `leg_records` over each other one, or, given `suites`, the first `leg_records` over each
    of those only.  Returns the (version, suite) pairs read over."""
    default = ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    topic = f"ktls-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, partitions=1)
    produced = make_records(records, value_size=value_size, partition=0)
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": pki.ca}
    confluent_produce(broker.bootstrap_of("SSL"), topic, produced, **ssl_conf)
    values = [r.value for r in produced]
    got = confluent_consume(broker.bootstrap_of("SSL"), topic, count=records, timeout=timeout, **ssl_conf)
    assert len(got) == records and digest([r.value for r in got]) == digest(values), len(got)
    if suites is None:
        every = [("TLSv1.3", s) for s in TLS13_SUITES] + [("TLSv1.2", s) for s in TLS12_SUITES]
        legs = [(*default, records)] + [(v, s, leg_records) for v, s in every if (v, s) != default]
    else:
        legs = [(v, s, leg_records) for v, s in suites]
    for version, suite, count in legs:
        leg = kafka_python_leg(broker, pki, topic, count, version, suite, workdir, timeout)
        assert leg == {"count": count, "digest": digest(values[:count])}, (version, suite, leg["count"])
    return {default} | {(version, suite) for version, suite, _ in legs}


def test_every_connection_derives_its_keys_and_falls_back_where_the_kernel_refuses(
        tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> None:
    """The kernel-TLS path up to the kernel, with real clients over every suite: each connection
    takes its client random, secrets and (TLS 1.2) server random and derives the keys; this kernel
    (no TLS module) refuses them, one debug line each, and the connection stays in user space.
    A listener with ssl.kernel.tls.enable=false stays in user space from the start."""
    from pyk.server.security.ktls import kernel_tls_missing

    if kernel_tls_missing() is None:
        pytest.skip("this kernel has TLS: tests/security/guest_kernel_tls.py covers it")
    workdir = tmp_path_factory.mktemp("pyk-ktls-drill")
    broker = secure_broker(workdir, pki, log_level="DEBUG", **{"listener.name.mtls.ssl.kernel.tls.enable": "false"})
    broker.env = {"PYK_ASSUME_KERNEL_TLS": "1"}
    broker.start()
    try:
        legs = every_client_reads(broker, pki, workdir, records=200, value_size=10_000, leg_records=50, timeout=60)
        text = wait_for(lambda: broker.log_text() if len(REFUSED_LINE.findall(broker.log_text()))
                        >= len(HANDSHAKE_LINE.findall(broker.log_text())) else None,
                        what="a kernel-TLS line for every SSL handshake")
        assert "TLS listeners SSL, SASL_SSL: kernel TLS (fetches zero-copy)" in text
        assert ("TLS listeners MTLS: user-space TLS (fetches pread and encrypt); kernel TLS is turned off "
                "(ssl.kernel.tls.enable=false)") in text
        assert set(REFUSED_LINE.findall(text)) >= legs
        assert text.count(USER_SPACE_LINE) == len(REFUSED_LINE.findall(text)), "a connection could not derive keys"
    finally:
        stop_and_check(broker)
