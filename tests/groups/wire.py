"""A protocol-level client for the group APIs: sends requests no real client would send.

It uses pyk.protocol's codec (checked against real clients' frames in tests/protocol), so the
tests here exercise the coordinator's semantics, not the encoding.  Requests can be sent and
their answers read separately, so one thread can park several JoinGroups at once.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from pyk import protocol
from pyk.protocol.apis import ApiKey


class Client:
    def __init__(self, bootstrap: str, client_id: str = "pyk-groups-wire", timeout: float = 20.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.client_id = client_id
        self.correlation_id = 0
        self.pending: list[tuple[int, ApiKey, int]] = []

    def send(self, api_key: ApiKey, version: int, body: dict[str, Any]) -> None:
        self.correlation_id += 1
        self.sock.sendall(protocol.encode_request(api_key, version, self.correlation_id, self.client_id, body))
        self.pending.append((self.correlation_id, api_key, version))

    def recv(self) -> dict[str, Any]:
        cid, api_key, version = self.pending.pop(0)
        size = struct.unpack(">i", self._exact(4))[0]
        got, body = protocol.decode_response(api_key, version, self._exact(size))
        assert got == cid, f"correlation id {got}, expected {cid}"
        return body

    def call(self, api_key: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.send(api_key, version, body)
        return self.recv()

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def subscription(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0 (version, topics, null user data), packed by hand."""
    out = struct.pack(">hi", 0, len(topics))
    for t in topics:
        out += struct.pack(">h", len(t)) + t.encode()
    return out + struct.pack(">i", -1)


def assignment(parts: dict[str, list[int]]) -> bytes:
    """ConsumerProtocolAssignment v0, packed by hand."""
    out = struct.pack(">hi", 0, len(parts))
    for t, ps in parts.items():
        out += struct.pack(">h", len(t)) + t.encode() + struct.pack(">i", len(ps))
        out += b"".join(struct.pack(">i", p) for p in ps)
    return out + struct.pack(">i", -1)
