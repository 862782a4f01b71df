"""Structure-aware mutations of valid Kafka request frames, shared by the decoder fuzzer
(hypothesis draws the mutations) and the live-socket fuzzer (a seeded random.Random draws them).

A seed is a valid request: every implemented (api, version) filled by tests/protocol/messages.py's
generator and encoded by pyk.protocol's client-side encoder, or a Produce request carrying a real
record batch.  A mutation is a small, deterministic edit aimed at what decoders trust: lengths and
counts (INT16/INT32 overwritten with huge, negative or off-by-one values), unsigned varints
(overlong, above 32 bits, the compact-string "length + 1" near 0), truncation, bit flips, and
duplicated or removed regions (nested array counts that no longer match their elements).

`Mutation` values are plain tuples so hypothesis can shrink them and a failure prints a short,
replayable recipe: `apply(seed_frame, mutations)`.
"""

from __future__ import annotations

import random
import struct
import time
from typing import Any

from pyk import protocol
from pyk.protocol.apis import SPECS
from tests.adversity.wire import record_batch
from tests.protocol.messages import generate

# (kind, position, value index): position is taken modulo the frame's length, value indexes
# the kind's table of interesting values.
Mutation = tuple[str, int, int]

KINDS = ("truncate", "flip", "int16", "int32", "varint", "insert", "delete", "duplicate")
_INT16 = (0x7FFF, 0x8000, 0xFFFF, 0xFFFE, 0x0000, 0x0001, 0x7FFE)
_INT32 = (0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFE, 0x00000000, 0x00FFFFFF, 0x40000000)
_VARINTS = (
    b"\xff\xff\xff\xff\xff\x01",  # six bytes: longer than an unsigned varint may be
    b"\xff\xff\xff\xff\x7f",  # five bytes above 32 bits
    b"\xff\xff\xff\xff\x0f",  # 2**32 - 1: a compact length of 4 GiB
    b"\x80\x80\x80\x80\x00",  # an overlong zero (null in compact encodings)
    b"\x00",  # compact null
    b"\x01",  # compact empty
    b"\xfe\xff\xff\x7f",  # about 2**28
    b"\x80",  # a continuation with nothing after it
)
_INSERTS = (b"\x00", b"\xff" * 4, b"\x7f\xff\xff\xff", b"\x80" * 9, bytes(range(16)))
VALUES = {"int16": len(_INT16), "int32": len(_INT32), "varint": len(_VARINTS), "insert": len(_INSERTS),
          "flip": 8, "truncate": 1, "delete": 16, "duplicate": 16}


def apply(frame: bytes, mutations: list[Mutation]) -> bytearray:
    """The frame (size prefix excluded) with the mutations applied in order."""
    out = bytearray(frame)
    for kind, position, value in mutations:
        n = len(out)
        pos = position % (n + 1)
        value %= VALUES[kind]
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip" and pos < n:
            out[pos] ^= 1 << value
        elif kind == "int16":
            out[pos : pos + 2] = struct.pack(">H", _INT16[value])
        elif kind == "int32":
            out[pos : pos + 4] = struct.pack(">I", _INT32[value])
        elif kind == "varint":
            out[pos : pos + 1] = _VARINTS[value]
        elif kind == "insert":
            out[pos:pos] = _INSERTS[value]
        elif kind == "delete":
            del out[pos : pos + 1 + value]
        elif kind == "duplicate":
            out[pos:pos] = out[pos : pos + 4 + 4 * value]
    return out


def random_mutations(rng: random.Random, count: int) -> list[Mutation]:
    kinds = rng.choices(KINDS, weights=(1, 3, 3, 3, 3, 1, 1, 1), k=count)
    return [(kind, rng.getrandbits(16), rng.getrandbits(8)) for kind in kinds]


# Seeds ------------------------------------------------------------------------------------------

CASES: list[tuple[int, int]] = [
    (int(key), version) for key, (low, high) in sorted(protocol.SUPPORTED.items()) for version in range(low, high + 1)
]


def seed_frame(key: int, version: int, seed: int, correlation_id: int = 1) -> bytes:
    """A valid request frame of (key, version), size prefix excluded; Produce requests carry a
    real record batch (the generator's records are random bytes)."""
    body: dict[str, Any] = generate(SPECS[key][0], version, random.Random(seed))
    if key == 0:
        rng = random.Random(seed)
        batch = record_batch([(b"k%d" % i, b"v" * rng.randint(0, 50)) for i in range(rng.randint(1, 5))],
                             codec=rng.choice((0, 0, 1, 2, 3, 4)), timestamp=int(time.time() * 1000))
        for topic in body["topic_data"]:
            for partition in topic["partition_data"]:
                partition["records"] = batch
    return protocol.encode_request(key, version, correlation_id, "pyk-fuzz", body)[4:]


def seed_batch(rng: random.Random) -> bytes:
    """A valid v2 record batch: a few records, any codec, sometimes idempotent or transactional."""
    records = [(None if rng.random() < 0.1 else b"k%d" % i, b"v" * rng.randint(0, 200))
               for i in range(rng.randint(1, 8))]
    producer = rng.random() < 0.3
    return record_batch(records, codec=rng.choice((0, 1, 2, 3, 4)), timestamp=int(time.time() * 1000),
                        producer_id=7 if producer else -1, producer_epoch=0 if producer else -1,
                        base_sequence=0 if producer else -1, transactional=producer and rng.random() < 0.5)
