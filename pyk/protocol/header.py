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

from pyk._native import scan_request_header
from pyk.protocol import primitives
from pyk.protocol.apis import FIRST_FLEXIBLE, ApiKey

_FIXED = struct.Struct(">hhi")
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


# api key -> (ApiKey, first version with a client_id, first version with header v2), for the
# Cython header scan.
_NEVER = 1 << 15  # above every int16 version
_KINDS: dict[int, tuple[ApiKey, int, int]] = {
    int(k): (k, 1 if k == ApiKey.CONTROLLED_SHUTDOWN else 0, _NEVER if (first := FIRST_FLEXIBLE[k]) is None else first)
    for k in ApiKey
}


def decode_request_header(frame: memoryview) -> tuple[RequestHeader, int]:
    """Parse the header at the start of `frame` (size prefix excluded), in Cython
    (pyk._native.scan_request_header: every request pays for it).

    Raises ProtocolViolation for a truncated header or an api key Kafka does not define.  A
    known key at any version parses: the dispatcher answers UNSUPPORTED_VERSION itself.
    """
    fields, pos = scan_request_header(frame, _KINDS)
    return _new_header(RequestHeader, fields), pos


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
