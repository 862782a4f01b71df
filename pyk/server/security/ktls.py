"""Kernel TLS: a finished handshake's sending keys handed to the kernel (linux/tls.h TLS_TX).

Python's ssl does not export session keys, but an SSLContext writes NSS key-log lines for every
handshake to `keylog_filename` (CPython Modules/_ssl/debughelpers.c: _PySSL_keylog_callback
flushes each line).  A context that goes to the kernel logs into a pipe (`KeyLog`) and each
connection takes the lines of its own client random right after every handshake step, so the
pipe never holds more than one step's lines and the callback's blocking write never waits:

    SERVER_TRAFFIC_SECRET_0 <client random hex> <secret hex>     TLS 1.3 (RFC 8446 7.1)
    CLIENT_RANDOM <client random hex> <master secret hex>        TLS 1.2 (RFC 5246 8.1)

From them `tx_crypto_info` derives the server's write key and IV (RFC 8446 7.3
HKDF-Expand-Label; RFC 5246 6.3 key block of the PRF, RFC 5288 / RFC 7905 for the AEAD nonces)
and packs the kernel's tls12_crypto_info_* struct:

    struct tls_crypto_info { u16 version; u16 cipher_type; }
    followed by  iv[iv_size]  key[key_size]  salt[salt_size]  rec_seq[8]

    cipher_type            iv  key  salt   (TLS 1.3: salt = write_iv[:4], iv = write_iv[4:];
    AES_GCM_128 = 51        8   16    4     TLS 1.2 GCM: salt = write_iv (4 bytes), iv = the first
    AES_GCM_256 = 52        8   32    4     explicit nonce, which the kernel increments;
    CHACHA20_POLY1305 = 54 12   32    0     ChaCha20: iv = write_iv, 12 bytes)

rec_seq is the number of records the server already sent under that key: 0 in TLS 1.3 (the
context sends no NewSessionTicket: num_tickets = 0), 1 in TLS 1.2 (the server's Finished).
Secrets never reach a log line, and a connection drops its own once installed.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

TCP_ULP = 31  # linux/tcp.h: attaches an upper-layer protocol ("tls") to an established TCP socket
SOL_TLS = 282  # linux/socket.h
TLS_TX = 1  # linux/tls.h: the sending direction's crypto info
_TLS_1_2, _TLS_1_3 = 0x0303, 0x0304
_RANDOM = 32  # bytes of a Hello's random
# A Hello's random follows the record header (type 1, version 2, length 2), the handshake header
# (type 1, length 3) and the legacy version (2).
_RANDOM_AT = 5 + 4 + 2
HELLO_RANDOM_END = _RANDOM_AT + _RANDOM  # the bytes of a flight that hold its Hello's random
_HANDSHAKE_RECORD, _CLIENT_HELLO, _SERVER_HELLO = 22, 1, 2
_KEY_LOG_READ = 64 * 1024  # the pipe's default capacity: one read takes all of it
# =1: the start-up probe answers "available" without asking the kernel, so listeners prepare every
# connection for the kernel and a kernel without TLS refuses each one's keys (a test drill of the
# per-connection fallback on machines without the tls module).
ASSUME_ENV = "PYK_ASSUME_KERNEL_TLS"


@dataclass(frozen=True)
class KernelCipher:
    """One of the kernel's AEAD ciphers: its number and field sizes (linux/tls.h)."""

    cipher_type: int
    key_size: int
    iv_size: int  # the struct's iv field
    salt_size: int
    write_iv_tls12: int  # fixed IV bytes per direction in a TLS 1.2 key block


AES_GCM_128 = KernelCipher(51, 16, 8, 4, 4)
AES_GCM_256 = KernelCipher(52, 32, 8, 4, 4)
CHACHA20_POLY1305 = KernelCipher(54, 32, 12, 0, 12)
# TLS 1.3 suites by IANA name; TLS 1.2 suites by the end of OpenSSL's name (ECDHE-ECDSA-, ECDHE-RSA-,
# DHE-RSA- or none in front), each with the hash of its HKDF / PRF.
_TLS13_SUITES = {
    "TLS_AES_128_GCM_SHA256": (AES_GCM_128, hashes.SHA256),
    "TLS_AES_256_GCM_SHA384": (AES_GCM_256, hashes.SHA384),
    "TLS_CHACHA20_POLY1305_SHA256": (CHACHA20_POLY1305, hashes.SHA256),
}
_TLS12_SUITES = {
    "AES128-GCM-SHA256": (AES_GCM_128, hashes.SHA256),
    "AES256-GCM-SHA384": (AES_GCM_256, hashes.SHA384),
    "CHACHA20-POLY1305": (CHACHA20_POLY1305, hashes.SHA256),
}
# The key-log label of the secret each version's sending keys come from.
TLS13_SECRET = "SERVER_TRAFFIC_SECRET_0"
TLS12_SECRET = "CLIENT_RANDOM"


class Unsupported(Exception):
    """The session cannot go to the kernel (its version or suite, or a missing secret): the
    connection stays in user space."""


class KeyLog:
    """The key-log lines of one listener's SSLContext, read back from a pipe.

    Made in the shard process that accepts the listener's connections, once: the context's
    key-log file is the pipe's write end (CPython opens it by its /proc/self/fd path, so the
    descriptor made here closes at once); the read end is non-blocking.  Owned by the shard's
    event loop, whose handshakes are the only writers.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            context.keylog_filename = f"/proc/self/fd/{write_end}"
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.fd = read_end
        self._partial = b""  # a line cut by the pipe's capacity

    def take(self, client_random: bytes | None) -> dict[str, bytes]:
        """The secrets logged for `client_random` since the last call, by label; lines of other
        sessions (a handshake that failed before its connection took them) are dropped."""
        lines = self._partial
        while True:
            try:
                chunk = os.read(self.fd, _KEY_LOG_READ)
            except BlockingIOError:
                break
            lines += chunk
            if len(chunk) < _KEY_LOG_READ:
                break
        *complete, self._partial = lines.split(b"\n")
        wanted = client_random.hex().encode() if client_random is not None else None
        secrets: dict[str, bytes] = {}
        for line in complete:
            fields = line.split()
            if len(fields) == 3 and fields[1] == wanted:
                secrets[fields[0].decode()] = bytes.fromhex(fields[2].decode())
        return secrets


@functools.cache
def kernel_tls_missing() -> str | None:
    """Why this kernel cannot take TLS sessions (None if it can): the "tls" upper-layer protocol
    is attached to a loopback connection made for the probe (ENOENT: no CONFIG_TLS / module)."""
    if os.environ.get(ASSUME_ENV) == "1":
        return None
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()[:2]) as client:
        accepted, _ = server.accept()
        with accepted:  # open until the probe is done: the ULP attaches to established sockets only
            try:
                client.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
            except OSError as exc:
                return f"setsockopt(TCP_ULP, 'tls'): {exc.strerror}"
    return None


def hello_random(records: bytes, message_type: int) -> bytes | None:
    """The random of the ClientHello / ServerHello at the start of `records` (a flight's first
    bytes), None if they do not start with one (or do not hold all of its random yet)."""
    if len(records) < HELLO_RANDOM_END or records[0] != _HANDSHAKE_RECORD or records[5] != message_type:
        return None
    return bytes(records[_RANDOM_AT:HELLO_RANDOM_END])


def client_hello_random(records: bytes) -> bytes | None:
    return hello_random(records, _CLIENT_HELLO)


def server_hello_random(records: bytes) -> bytes | None:
    return hello_random(records, _SERVER_HELLO)


def _expand_label(algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1: struct HkdfLabel)."""
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(algorithm, length, info).derive(secret)


def _prf(algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF: P_hash(secret, label + seed) (RFC 5246 5)."""
    seed = label + seed

    def mac(data: bytes) -> bytes:
        h = hmac.HMAC(secret, algorithm)
        h.update(data)
        return h.finalize()

    out, a = b"", seed
    while len(out) < length:
        a = mac(a)
        out += mac(a + seed)
    return out[:length]


def tx_crypto_info(version: str | None, cipher_name: str, secrets: dict[str, bytes], client_random: bytes,
                   server_random: bytes | None) -> bytes:
    """The kernel's crypto info for the server's sending direction of a finished handshake
    (see the module docstring); Unsupported when this session cannot go to the kernel."""
    if version == "TLSv1.3":
        if cipher_name not in _TLS13_SUITES:
            raise Unsupported(f"cipher suite {cipher_name}")
        cipher, hash_type = _TLS13_SUITES[cipher_name]
        secret = secrets.get(TLS13_SECRET)
        if secret is None:
            raise Unsupported(f"no {TLS13_SECRET} key-log line")
        key = _expand_label(hash_type(), secret, b"key", cipher.key_size)
        write_iv = _expand_label(hash_type(), secret, b"iv", 12)
        salt, iv, seq, tls_version = write_iv[: cipher.salt_size], write_iv[cipher.salt_size :], 0, _TLS_1_3
    elif version == "TLSv1.2":
        suite = next((s for s in _TLS12_SUITES if cipher_name.endswith(s)), None)
        if suite is None:
            raise Unsupported(f"cipher suite {cipher_name}")
        cipher, hash_type = _TLS12_SUITES[suite]
        master = secrets.get(TLS12_SECRET)
        if master is None or not server_random:
            raise Unsupported(f"no {TLS12_SECRET} key-log line" if master is None else "no ServerHello seen")
        # key block: client_write_key, server_write_key, client_write_IV, server_write_IV
        key_size, iv_size = cipher.key_size, cipher.write_iv_tls12
        block = _prf(hash_type(), master, b"key expansion", server_random + client_random, 2 * (key_size + iv_size))
        key = block[key_size : 2 * key_size]
        write_iv = block[2 * key_size + iv_size :]
        seq, tls_version = 1, _TLS_1_2
        if cipher.salt_size:  # GCM: the fixed IV is the salt, the explicit nonce any unique value
            salt, iv = write_iv, seq.to_bytes(8, "big")
        else:
            salt, iv = b"", write_iv
    else:
        raise Unsupported(f"version {version}")
    # The struct's u16 fields are in the host's byte order, its byte arrays as on the wire.
    return struct.pack("=HH", tls_version, cipher.cipher_type) + iv + key + salt + seq.to_bytes(8, "big")


def install(sock: socket.socket, crypto_info: bytes) -> None:
    """Attaches the kernel's TLS to the socket and gives it the sending keys; OSError if the
    kernel refuses (the socket then still sends as plain TCP)."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
    sock.setsockopt(SOL_TLS, TLS_TX, crypto_info)
