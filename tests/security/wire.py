"""A minimal Kafka client over one socket (plain or TLS), for checks no real client exposes:
the exact error code of SaslAuthenticate, the session lifetime, and that the broker closed."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from typing import Any

from pyk import protocol
from tests.helpers import recv_exact


class Wire:
    def __init__(self, bootstrap: str, tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname=host) if tls is not None else sock
        self._correlation = 0

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, api_key: int, version: int, body: dict[str, Any]) -> int:
        self._correlation += 1
        self.sock.sendall(protocol.encode_request(api_key, version, self._correlation, "pyk-tests-wire", body))
        return self._correlation

    def request(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        correlation = self.send(api_key, version, body)
        size = struct.unpack(">i", recv_exact(self.sock, 4))[0]
        got, answer = protocol.decode_response(api_key, version, recv_exact(self.sock, size))
        assert got == correlation
        return answer

    def closed_by_broker(self, timeout: float = 10.0) -> bool:
        """Waits for the broker to close: EOF (or a reset) before `timeout`; False if it stays open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except (ConnectionError, ssl.SSLError):
                return True
        return False

    def authenticate(self, mechanism: str, token: bytes, version: int = 2) -> dict[str, Any]:
        handshake = self.request(17, 1, {"mechanism": mechanism})
        assert handshake["error_code"] == 0, handshake
        return self.request(36, version, {"auth_bytes": token})
