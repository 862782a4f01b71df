"""pyk's Kafka wire protocol: bytes <-> plain dicts, sans-IO.

Public entry points (the contract in docs/architecture.md, section "protocol"):

* `decode_request_header(frame)` -> (RequestHeader, body offset)
* `decode_request(api_key, version, frame, offset)` -> dict
* `encode_response(api_key, version, correlation_id, body)` -> list of parts (size prefix
  included); a part is `bytes` or a sendable object with an int `size` (a file slice)
* client side, for tests and `pyk bench`: `encode_request(...)` -> bytes (size prefix
  included) and `decode_response(api_key, version, frame)` -> (correlation id, dict)
* `SUPPORTED`: version range of every implemented API; `is_known(key)`: whether Kafka
  defines the api key at all; `ApiKey`, `RequestHeader`.

Messages are dicts with snake_case keys named after Kafka's fields; absent keys encode as
the field's default.  Codecs are compiled per (api, version) on first use (compile.py).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError, ProtocolViolation
from pyk.protocol import compile as _compile
from pyk.protocol import primitives as _primitives
from pyk.protocol.apis import SPECS, SUPPORTED, ApiKey
from pyk.protocol.header import (
    RequestHeader,
    decode_request_header,
    decode_response_header,
    write_request_header,
    write_response_header,
)
from pyk.protocol.spec import Message

__all__ = [
    "SUPPORTED",
    "ApiKey",
    "ProtocolViolation",
    "RequestHeader",
    "decode_request",
    "decode_request_header",
    "decode_response",
    "encode_request",
    "encode_response",
    "is_known",
    "precompile",
]

_I32 = _primitives.INT32
_KNOWN = frozenset(int(k) for k in ApiKey)

# Per-(api, version) codec caches in front of compile.py's, so the hot path is one dict get.
_request_decoders: dict[tuple[int, int], _compile.Decoder] = {}
_response_encoders: dict[tuple[int, int], _compile.Encoder] = {}


def is_known(api_key: int) -> bool:
    """True if Kafka defines `api_key` (whether or not pyk implements it)."""
    return api_key in _KNOWN


def _spec(api_key: int, version: int, index: int) -> Message:
    pair = SPECS.get(api_key)  # type: ignore[call-overload]
    if pair is None or version not in pair[index].valid:
        raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"api key {api_key} version {version} is not implemented")
    spec: Message = pair[index]
    return spec


def decode_request(api_key: int, version: int, frame: memoryview, offset: int) -> dict[str, Any]:
    """Decode the request body at `offset` of `frame` (a memoryview of the frame without its
    size prefix).  Raises ProtocolViolation for truncated or malformed bytes, and
    KafkaError(UNSUPPORTED_VERSION) if no spec covers (api_key, version)."""
    fn = _request_decoders.get((api_key, version))
    if fn is None:
        fn = _request_decoders[(api_key, version)] = _compile.decoder(_spec(api_key, version, 0), version)
    return fn(frame, offset)


def encode_response(api_key: int, version: int, correlation_id: int, body: dict[str, Any]) -> list[Any]:
    """The whole response frame, size prefix included, as parts to write in order.

    Parts are `bytes`, except a `records` value that is neither bytes nor a memoryview: it
    is passed through as its own part (its `size` counted in the prefix) for sendfile.
    """
    fn = _response_encoders.get((api_key, version))
    if fn is None:
        fn = _response_encoders[(api_key, version)] = _compile.encoder(_spec(api_key, version, 1), version)
    out = bytearray(4)
    write_response_header(out, ApiKey(api_key), version, correlation_id)
    parts: list[Any] = []
    out = fn(body, out, parts)
    if not parts:
        _I32.pack_into(out, 0, len(out) - 4)
        return [bytes(out)]
    parts.append(out)
    total = -4
    for part in parts:
        total += len(part) if isinstance(part, bytearray) else part.size
    _I32.pack_into(parts[0], 0, total)
    return [bytes(p) if isinstance(p, bytearray) else p for p in parts if not isinstance(p, bytearray) or p]


def encode_request(api_key: int, version: int, correlation_id: int, client_id: str | None,
                   body: dict[str, Any]) -> bytes:
    """A whole request frame, size prefix included (client side: tests, bench).

    Strict: a non-ignorable field the version cannot carry, set to a non-default value,
    raises compile.UnsupportedFieldVersion (a ValueError), as Kafka's clients refuse to."""
    fn = _compile.encoder(_spec(api_key, version, 0), version, strict=True)
    out = bytearray(4)
    write_request_header(out, ApiKey(api_key), version, correlation_id, client_id)
    parts: list[Any] = []
    out = fn(body, out, parts)
    if parts:
        raise TypeError("a request's records must be bytes or a memoryview, not a sendable object")
    _I32.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def decode_response(api_key: int, version: int, frame: bytes | bytearray | memoryview) -> tuple[int, dict[str, Any]]:
    """(correlation id, body) of a response frame without its size prefix (client side)."""
    view = memoryview(frame)
    correlation_id, pos = decode_response_header(ApiKey(api_key), version, view)
    return correlation_id, _compile.decoder(_spec(api_key, version, 1), version)(view, pos)


def precompile() -> None:
    """Compile every codec now (server start-up), instead of on each one's first use."""
    for api_key, (low, high) in SUPPORTED.items():
        request, response = SPECS[api_key]
        for version in range(low, high + 1):
            _compile.decoder(request, version)
            _compile.encoder(response, version)
            _compile.encoder(request, version, strict=True)
            _compile.decoder(response, version)
