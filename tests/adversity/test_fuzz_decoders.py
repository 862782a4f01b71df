"""Decoder fuzzer: mutated and random request frames through the broker's own decode path.

Every implemented (api, version) is seeded with a valid encoded request (tests/adversity/fuzz.py)
and mutated; hypothesis also feeds plain random bytes.  The frame goes through what a shard does
with it before a handler runs: the request header scan (ext/wire.pyx), then the ProduceRequest
scan (ext/wire.pyx) or the declarative codec (pyk/protocol/compile.py).  Record batches of valid
Produce requests go through LogValidator (ext/batch.pyx, records.pyx, compress.pyx, and
pyk/log/legacy.py for magic 0/1).  The only outcomes allowed are a decoded request or the
defined errors (ProtocolViolation; KafkaError for an unsupported version or a bad batch), and the
memory a decode allocates must follow the bytes that exist, never a length the frame claims.

Budget: PYK_FUZZ_EXAMPLES examples per test (default 2000: about 10 s for the module on a loaded
2-core machine); the `soak` variant runs PYK_FUZZ_SECONDS (default 300) of seeded random
mutations and reports the count.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyk import protocol
from pyk.errors import KafkaError, ProtocolViolation
from pyk.log.config import LogConfig
from pyk.log.validator import LogValidator
from pyk.server.dispatch import DECODERS, HANDLERS
from tests.adversity.fuzz import CASES, KINDS, Mutation, apply, random_mutations, seed_batch, seed_frame

EXAMPLES = int(os.environ.get("PYK_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# A decode may build objects several times larger than the bytes it reads (a dict per 2-byte
# struct); what it must never do is allocate for a length the frame only claims (2**31 bytes,
# 2**32 elements).
ALLOCATION_PER_BYTE = 400
ALLOCATION_SLACK = 256 * 1024

mutations = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 2**16), st.integers(0, 255)),
                     min_size=1, max_size=4)
_SEEDS: dict[tuple[int, int, int], bytes] = {}  # (key, version, seed) -> frame: the seeds are few
protocol.precompile()  # compiling a codec is not decoding: keep it out of the allocation bound


def _seed(key: int, version: int, seed: int) -> bytes:
    frame = _SEEDS.get((key, version, seed))
    if frame is None:
        frame = _SEEDS[(key, version, seed)] = seed_frame(key, version, seed)
    return frame


def decode_like_a_shard(frame: bytearray) -> object:
    """What pyk/server/dispatch.py does with a frame before the handler: header, version check,
    body decode.  Returns the request, or None where the dispatcher would close the connection."""
    view = memoryview(frame)
    header, offset = protocol.decode_request_header(view)
    handler = HANDLERS.get(header.api_key)
    if handler is None or not handler.MIN_VERSION <= header.api_version <= handler.MAX_VERSION:
        return None
    decode = DECODERS.get(header.api_key)
    if decode is None:
        return protocol.decode_request(header.api_key, header.api_version, view, offset)
    return decode(view, offset, header.api_version)


def check_decode(frame: bytearray) -> None:
    """Decodes under tracemalloc: a defined error or a result, and allocations bounded by the frame."""
    tracemalloc.start()
    try:
        try:
            result = decode_like_a_shard(frame)
        except (ProtocolViolation, KafkaError):
            result = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    bound = ALLOCATION_PER_BYTE * len(frame) + ALLOCATION_SLACK
    assert peak <= bound, f"decoding a {len(frame)}-byte frame allocated {peak} bytes at its peak"


@FUZZ
@given(st.sampled_from(CASES), st.integers(0, 3), mutations)
def test_mutated_requests_decode_or_fail_cleanly(case: tuple[int, int], seed: int, edits: list[Mutation]) -> None:
    key, version = case
    check_decode(apply(_seed(key, version, seed), edits))


@FUZZ
@given(st.sampled_from([c for c in CASES if c[0] == 0]), st.integers(0, 7), mutations)
def test_mutated_produce_requests(case: tuple[int, int], seed: int, edits: list[Mutation]) -> None:
    """The native ProduceRequest scan gets its own share of examples: it is the hot path."""
    key, version = case
    check_decode(apply(_seed(key, version, seed), edits))


@FUZZ
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes(frame: bytes) -> None:
    check_decode(bytearray(frame))


@FUZZ
@given(st.sampled_from(CASES), st.binary(min_size=0, max_size=64))
def test_valid_header_random_body(case: tuple[int, int], body: bytes) -> None:
    key, version = case
    seed = _seed(key, version, 0)
    _, offset = protocol.decode_request_header(memoryview(bytearray(seed)))
    check_decode(bytearray(seed[:offset] + body))


_LOG_CONFIG = LogConfig.from_server({})


def check_batch(batch: bytearray) -> None:
    """LogValidator on a produced batch: accepted, or a KafkaError (a partition error code)."""
    try:
        LogValidator.validate(memoryview(batch), _LOG_CONFIG, int(time.time() * 1000))
    except KafkaError:
        pass


@FUZZ
@given(st.integers(0, 2**32), mutations)
def test_mutated_record_batches(seed: int, edits: list[Mutation]) -> None:
    check_batch(apply(seed_batch(random.Random(seed)), edits))


@pytest.mark.soak
@pytest.mark.timeout(float(os.environ.get("PYK_FUZZ_SECONDS", "300")) + 300)
def test_decoders_for_a_while() -> None:
    """The long run: PYK_FUZZ_SECONDS of seeded random mutations over every (api, version) and
    over record batches; prints how many frames it tried."""
    seconds = float(os.environ.get("PYK_FUZZ_SECONDS", "300"))
    rng = random.Random(int(os.environ.get("PYK_FUZZ_SEED", "0")) or random.getrandbits(32))
    deadline = time.monotonic() + seconds
    frames = batches = 0
    while time.monotonic() < deadline:
        for _ in range(100):
            edits = random_mutations(rng, rng.randint(1, 6))
            if rng.random() < 0.15:
                check_batch(apply(seed_batch(rng), edits))
                batches += 1
                continue
            key, version = rng.choice(CASES)
            frame = apply(_seed(key, version, rng.randrange(4)), edits)
            try:
                check_decode(frame)
            except AssertionError:
                raise AssertionError(f"{key} v{version} mutations {edits}: frame {bytes(frame).hex()}") from None
            frames += 1
    print(f"decoder fuzz: {frames} request frames and {batches} record batches in {seconds:.0f} s")
