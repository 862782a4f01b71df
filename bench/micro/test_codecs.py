"""Each codec on a 1000 x 100 B records section (~108 KiB of JSON-like log lines), in the
framing Kafka clients read: pyk._native (the C libraries: zlib, snappy, liblz4, libzstd, GIL
released) vs the reference (tests/ref/compress.py) — which *is* the well-kept Python library
for each job (zlib, cramjam's snappy, lz4.frame, zstandard), called with Kafka's framing — so
the "reference" column doubles as the library baseline.  recompress_batch is the broker's
job when a topic's compression.type differs from the producer's."""

from __future__ import annotations

import pytest
from bench_inputs import CODECS, make_batch

import pyk._native as native
from tests import ref

if not hasattr(native, "compress"):
    pytest.skip("pyk._native has no codecs yet", allow_module_level=True)

SECTION = bytes(make_batch(1000)[61:])  # the records section of an uncompressed batch
COMPRESSED = {name: bytes(ref.compress(c, SECTION)) for name, c in CODECS.items()}
IMPLS = {"native": native, "reference-library": ref}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("codec", list(CODECS))
def test_compress(benchmark, codec, impl):
    benchmark.group = f"compress {codec} 108 KiB"
    out = benchmark(IMPLS[impl].compress, CODECS[codec], SECTION)
    benchmark.extra_info["ratio"] = round(len(SECTION) / len(out), 2)
    assert ref.decompress(CODECS[codec], out) == SECTION


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("codec", list(CODECS))
def test_decompress(benchmark, codec, impl):
    benchmark.group = f"decompress {codec} 108 KiB"
    assert benchmark(IMPLS[impl].decompress, CODECS[codec], COMPRESSED[codec]) == SECTION


@pytest.mark.skipif(not hasattr(native, "recompress_batch"), reason="pyk._native has no recompress_batch yet")
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("pair", ["lz4->zstd", "none->lz4", "zstd->none"])
def test_recompress_batch(benchmark, pair, impl):
    benchmark.group = f"recompress_batch {pair} 1000x100B"
    source, target = pair.split("->")
    batch = make_batch(1000, compression=CODECS.get(source, 0))
    out = benchmark(IMPLS[impl].recompress_batch, batch, CODECS.get(target, 0))
    assert native.validate_batch(out, 1 << 30, True) == 0
