"""Request and response headers, and which header version goes with each (api, version).

    Request Header v0 => request_api_key:INT16 request_api_version:INT16 correlation_id:INT32
    Request Header v1 => v0 client_id:NULLABLE_STRING
    Request Header v2 => v1 TAG_BUFFER          (client_id stays a non-compact string)
    Response Header v0 => correlation_id:INT32
    Response Header v1 => v0 TAG_BUFFER

A flexible request version uses request header v2 and response header v1 (KIP-482); others
use v1 and v0.  Two exceptions: ControlledShutdown v0 predates client_id (header v0), and an
ApiVersions response always uses response header v0 (KIP-511) so that a client which sent a
version we do not support can still parse the answer that lists the versions we do.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from pyk.errors import ProtocolViolation
from pyk.protocol import primitives
from pyk.protocol.apis import FIRST_FLEXIBLE, ApiKey

_KEYS: dict[int, ApiKey] = {int(k): k for k in ApiKey}
_FIXED = struct.Struct(">hhi")
_I16 = primitives.INT16
_I32 = primitives.INT32


class RequestHeader(NamedTuple):
    api_key: ApiKey
    api_version: int
    correlation_id: int
    client_id: str | None


# NamedTuple's generated __new__ is Python code; building the tuple directly halves the cost
# of the one header every request pays for.
_new_header = tuple.__new__


def is_flexible(api_key: ApiKey, version: int) -> bool:
    first = FIRST_FLEXIBLE[api_key]
    return first is not None and version >= first


def request_header_version(api_key: ApiKey, version: int) -> int:
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and version == 0:
        return 0
    first = FIRST_FLEXIBLE[api_key]
    return 2 if first is not None and version >= first else 1


def response_header_version(api_key: ApiKey, version: int) -> int:
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if is_flexible(api_key, version) else 0


def decode_request_header(frame: memoryview) -> tuple[RequestHeader, int]:
    """Parse the header at the start of `frame` (size prefix excluded).

    Raises ProtocolViolation for a truncated header or an api key Kafka does not define.  A
    known key at any version parses: the dispatcher answers UNSUPPORTED_VERSION itself.
    """
    if len(frame) < 8:
        raise primitives.short_read("request header", 8, frame, 0)
    raw_key, version, correlation_id = _FIXED.unpack_from(frame, 0)
    api_key = _KEYS.get(raw_key)
    if api_key is None:
        raise ProtocolViolation(f"unknown api key {raw_key} (version {version}, correlation id {correlation_id})")
    header_version = request_header_version(api_key, version)
    if header_version == 0:
        return _new_header(RequestHeader, (api_key, version, correlation_id, None)), 8
    # client_id inline (every request carries one): INT16 length, -1 for null.
    if len(frame) < 10:
        raise primitives.short_read("client_id length", 2, frame, 8)
    length = _I16.unpack_from(frame, 8)[0]
    pos = 10
    if length < 0:
        client_id = None
    else:
        pos += length
        if pos > len(frame):
            raise primitives.short_read("client_id", length, frame, 10)
        try:
            client_id = str(frame[10:pos], "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation(f"client_id is not UTF-8: {exc.reason}") from None
    if header_version == 2:
        if pos < len(frame) and frame[pos] == 0:
            pos += 1
        else:
            pos = primitives.skip_tagged_fields(frame, pos)
    return _new_header(RequestHeader, (api_key, version, correlation_id, client_id)), pos


def write_request_header(out: bytearray, api_key: ApiKey, version: int, correlation_id: int,
                         client_id: str | None) -> None:
    out += _FIXED.pack(api_key, version, correlation_id)
    header_version = request_header_version(api_key, version)
    if header_version >= 1:
        primitives.write_nullable_string(out, client_id)
    if header_version == 2:
        out += b"\x00"


def write_response_header(out: bytearray, api_key: ApiKey, version: int, correlation_id: int) -> None:
    out += _I32.pack(correlation_id)
    if response_header_version(api_key, version) == 1:
        out += b"\x00"


def decode_response_header(api_key: ApiKey, version: int, frame: memoryview) -> tuple[int, int]:
    """(correlation id, offset of the body) of a response frame (size prefix excluded)."""
    correlation_id, pos = primitives.read_int32(frame, 0)
    if response_header_version(api_key, version) == 1:
        pos = primitives.skip_tagged_fields(frame, pos)
    return correlation_id, pos
