"""Generators of non-trivial messages for any (spec, version), shared by the protocol tests
and the micro-benchmarks.

`generate(message, version, rng)` fills every field the version carries with a random
non-default-looking value (nulls and defaults sometimes, so both paths are exercised);
`expected(message, version, body)` is what decoding its encoding must give: the same values,
plus defaults for fields the version cannot carry.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from pyk.protocol.spec import Field, Message

_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1),
}


def _scalar(t: str, rng: random.Random) -> Any:
    if t in _RANGES:
        lo, hi = _RANGES[t]
        return rng.choice([lo, hi, 0, 1, -1 if lo < 0 else 2, rng.randint(lo, hi)])
    if t == "float64":
        return rng.choice([0.5, -1.25e300, 3.0])
    if t == "bool":
        return rng.random() < 0.5
    if t == "string":
        return rng.choice(["", "topic-a", "ü-ñ-✓", "x" * rng.randint(100, 300)])
    if t == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 3, 200])))
    if t == "records":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 61, 300])))
    if t == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    raise AssertionError(t)


def _value(f: Field, version: int, rng: random.Random, depth: int) -> Any:
    if version in f.nullable and rng.random() < 0.2:
        return None
    if f.tag is not None and rng.random() < 0.3:
        return f.default
    if f.is_array:
        elem = f.element_type
        assert elem is not None
        count = rng.choice([1, 2, 3]) if depth < 3 else 1
        if f.is_struct_array:
            return [_struct(f.fields, version, rng, depth + 1) for _ in range(count)]
        return [_scalar(elem, rng) for _ in range(count)]
    if f.is_struct:
        return _struct(f.fields, version, rng, depth + 1)
    return _scalar(f.type, rng)


def _struct(fields: tuple[Field, ...], version: int, rng: random.Random, depth: int) -> dict[str, Any]:
    return {f.name: _value(f, version, rng, depth) for f in fields if version in f.versions}


def generate(message: Message, version: int, rng: random.Random) -> dict[str, Any]:
    return _struct(message.fields, version, rng, 0)


def _expect_struct(fields: tuple[Field, ...], version: int, body: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for f in fields:
        if version not in f.versions or f.name not in body:
            value = f.default
        else:
            value = body[f.name]
        out[f.name] = _expect_value(f, version, value)
    return out


def _expect_value(f: Field, version: int, value: Any) -> Any:
    if value is None:
        return None
    if f.is_struct_array:
        return [_expect_struct(f.fields, version, v) for v in value]
    if f.is_struct:
        return _expect_struct(f.fields, version, value)
    if f.is_array:
        return list(value)
    return value


def expected(message: Message, version: int, body: dict[str, Any]) -> dict[str, Any]:
    return _expect_struct(message.fields, version, body)


def plain(value: Any) -> Any:
    """`value` with memoryviews turned into bytes, for comparisons."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
