"""Codecs and batch recompression: pyk._native against tests/ref (Python packages) and
kafka-python's codec module (another client's framing, xerial snappy included)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from kafka import codec as kafka_codec
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

import pyk._native as native
import tests.ref as ref
from pyk.errors import ErrorCode
from tests.adversity.wire import record_batch
from tests.ref.bombs import BOMBS
from tests.ref.builder import Record, build_batch
from tests.ref.parity import no_deadline, outcome
from tests.ref.strategies import batches, mutated, records

CODECS = [0, 1, 2, 3, 4]
codecs = st.sampled_from(CODECS)
payloads = st.binary(max_size=2000) | st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=20),
                                               st.integers(1, 300))
MAX = 1 << 20


# compress / decompress

@no_deadline
@given(codecs, payloads)
def test_round_trip_both_ways(codec, data):
    mine, theirs = native.compress(codec, data), ref.compress(codec, data)
    assert native.decompress(codec, mine) == data
    assert native.decompress(codec, theirs) == data
    assert ref.decompress(codec, mine) == data


@pytest.mark.skipif(zlib.ZLIB_RUNTIME_VERSION != zlib.ZLIB_VERSION, reason="Python's zlib is another build")
@no_deadline
@given(payloads)
def test_gzip_bytes_equal_reference(data):
    # Same library, same parameters (level 6, gzip wrapper, mtime 0): same bytes.
    assert native.compress(1, data) == ref.compress(1, data)


@no_deadline
@given(codecs, payloads)
def test_matches_kafka_python_codecs(codec, data):
    encode = {1: kafka_codec.gzip_encode, 2: kafka_codec.snappy_encode, 3: kafka_codec.lz4_encode,
              4: kafka_codec.zstd_encode}
    decode = {1: kafka_codec.gzip_decode, 2: kafka_codec.snappy_decode, 3: kafka_codec.lz4_decode,
              4: kafka_codec.zstd_decode}
    if codec == 0:
        return
    assert native.decompress(codec, encode[codec](data)) == data  # xerial framing for snappy
    assert decode[codec](native.compress(codec, data)) == data


@no_deadline
@given(st.binary(min_size=1, max_size=200), st.integers(1, 5000))
def test_xerial_blocks(data, block_size):
    framed = kafka_codec.snappy_encode(data * 20, xerial_compatible=True, xerial_blocksize=block_size)
    assert framed.startswith(b"\x82SNAPPY\x00")
    assert native.decompress(2, framed) == ref.decompress(2, framed) == data * 20


@no_deadline
@given(codecs, st.data())
def test_corrupt_input_agrees(codec, data):
    payload = data.draw(payloads)
    if codec == 4:
        # Damage inside a zstd frame without a content checksum is caught or not depending on the
        # libzstd release (Debian's 1.5.4 behind pyk._native, a newer one inside `zstandard`);
        # with the checksum both must refuse every damaged frame, which is what is compared.
        compressed = bytearray(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(payload))
    else:
        compressed = bytearray(ref.compress(codec, payload))
    damaged = bytes(data.draw(mutated(st.just(compressed))))
    got, want = outcome(native.decompress, codec, damaged), outcome(ref.decompress, codec, damaged)
    assert got == want


@no_deadline
@given(codecs, st.binary(max_size=64))
def test_garbage_input_agrees(codec, data):
    assert outcome(native.decompress, codec, data) == outcome(ref.decompress, codec, data)


@pytest.mark.parametrize("codec", [0, 1, 3, 4])  # raw snappy has no frame end to concatenate at
def test_concatenated_frames(impl, codec):
    joined = impl.compress(codec, b"first ") + impl.compress(codec, b"second")
    assert impl.decompress(codec, joined) == b"first second"


@pytest.mark.parametrize("codec", CODECS)
def test_empty(impl, codec):
    assert impl.decompress(codec, impl.compress(codec, b"")) == b""
    assert outcome(impl.decompress, codec, b"") == (("ok", b"") if codec == 0 else ("raise", ValueError))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("extra", [0, 1])
def test_max_size(impl, codec, extra):
    data = b"0123456789" * 1000
    packed = impl.compress(codec, data)
    assert impl.decompress(codec, packed, len(data) + extra) == data
    with pytest.raises(ValueError):
        impl.decompress(codec, packed, len(data) - 1 - extra)


@pytest.mark.parametrize("codec", CODECS)
def test_large_input_without_gil(codec):
    data = bytes(range(256)) * 4096 + b"x" * 300_000
    assert native.decompress(codec, native.compress(codec, memoryview(data))) == data


@pytest.mark.parametrize("args", [(5, b"x"), (-1, b"x"), (1 << 40, b"x"), (1, "text"), (1, None)])
def test_bad_arguments(args):
    assert outcome(native.compress, *args) == outcome(ref.compress, *args)
    assert outcome(native.decompress, *args) == outcome(ref.decompress, *args)
    assert outcome(native.compress, *args)[0] == "raise"


# recompress_batch

def record_tuples(batch) -> list:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(bytes(batch))]


@no_deadline
@given(batches(compression=codecs), codecs)
def test_recompress_batch(batch, codec):
    mine, theirs = native.recompress_batch(batch, codec), ref.recompress_batch(batch, codec)
    for out in (mine, theirs):
        info, original = native.batch_info(out), native.batch_info(batch)
        assert info.compression == codec and info.size == len(out)
        for name in ref.BATCH_INFO_FIELDS:
            if name not in ("batch_length", "size", "crc", "attributes", "compression"):
                assert getattr(info, name) == getattr(original, name), name
        assert info.attributes & ~7 == original.attributes & ~7
        assert native.validate_batch(out, MAX, True) == 0
    # Uncompressed, both sides must produce the very same bytes.
    assert native.recompress_batch(mine, 0) == ref.recompress_batch(theirs, 0) == ref.recompress_batch(batch, 0)
    assert record_tuples(mine) == record_tuples(batch)


@no_deadline
@given(st.lists(records, min_size=1, max_size=5), st.sampled_from([1, 2, 3, 4]))
def test_kafka_python_compressed_batches(recs, codec):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=MAX)
    # kafka-python keeps a batch uncompressed when compression would not shrink it.
    for i, r in enumerate([*recs, Record(b"x" * 300)]):
        builder.append(i, timestamp=r.timestamp, key=r.key, value=r.value,
                       headers=[(k.decode(), v) for k, v in r.headers])
    batch = bytes(builder.build())
    assert native.batch_info(batch).compression == codec
    assert native.validate_batch(batch, MAX, True) == ref.validate_batch(batch, MAX, True) == 0
    assert native.recompress_batch(batch, 0) == ref.recompress_batch(batch, 0)


@no_deadline
@given(mutated(batches(compression=codecs)), st.booleans())
def test_validate_deep_agrees(batch, deep):
    assert native.validate_batch(batch, MAX, deep) == ref.validate_batch(batch, MAX, deep)


def test_validate_deep_catches_bad_records(impl):
    good = build_batch([Record(b"a"), Record(b"b")], compression=4)
    # Same header claiming 3 records: CRC recomputed, so only the deep walk can see it.
    bad = bytearray(good)
    struct.pack_into(">i", bad, 57, 3)
    struct.pack_into(">i", bad, 23, 2)
    struct.pack_into(">I", bad, 17, ref.crc32c(bad[21:]))
    assert impl.validate_batch(bad, MAX) == 0
    assert impl.validate_batch(bad, MAX, True) == ErrorCode.INVALID_RECORD
    garbled = bytearray(good[:61]) + b"\x00" * 20
    struct.pack_into(">i", garbled, 8, len(garbled) - 12)
    struct.pack_into(">I", garbled, 17, ref.crc32c(garbled[21:]))
    assert impl.validate_batch(garbled, MAX) == 0
    assert impl.validate_batch(garbled, MAX, True) == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("args", [
    (build_batch([Record(b"a")]), 9),
    (build_batch([Record(b"a")])[:-1], 1),
    (bytes(60), 1),
    (bytes(build_batch([Record(b"a")], compression=1)[:61]) + b"junk", 0),
])
def test_recompress_errors(args):
    batch, codec = args
    if len(batch) > 61 and batch[61:] == b"junk":
        batch = bytearray(batch)
        struct.pack_into(">i", batch, 8, len(batch) - 12)
    assert outcome(native.recompress_batch, batch, codec) == outcome(ref.recompress_batch, batch, codec)
    assert outcome(native.recompress_batch, batch, codec)[0] == "raise"


# Decompression bombs: every codec stops at the bound, whatever the input claims

def bomb_batch(section: bytes, codec: int) -> bytes:
    """A v2 batch of one record whose records section is `section`, under a CRC that matches."""
    return record_batch([(b"k", b"v")], codec=codec, records_section=section)


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused_at_the_bound(impl, name):
    """8 MiB of zeros under a 1 MiB bound: decompress raises, deep validation answers
    MESSAGE_TOO_LARGE (CORRUPT_MESSAGE where the frame's own header gives it away) and
    recompression raises; with room for the output they all go through (the zeros are no
    valid records, so validation then reports the records)."""
    codec, build = BOMBS[name]
    section = build(8 << 20)
    batch = bomb_batch(section, codec)
    lying = "lying" in name
    assert outcome(impl.decompress, codec, section, 1 << 20) == ("raise", ValueError)
    assert impl.validate_batch(batch, MAX, True, 1 << 20) in (
        (ErrorCode.CORRUPT_MESSAGE, ErrorCode.MESSAGE_TOO_LARGE) if lying else (ErrorCode.MESSAGE_TOO_LARGE,))
    assert outcome(impl.recompress_batch, batch, 0, 1 << 20) == ("raise", ValueError)
    if not lying:
        assert impl.decompress(codec, section, 8 << 20) == bytes(8 << 20)
        assert len(impl.recompress_batch(batch, 0, 8 << 20)) == 61 + (8 << 20)
    assert native.validate_batch(batch, MAX, True, 8 << 20) == ref.validate_batch(batch, MAX, True, 8 << 20) != 0


# Run in a fresh interpreter, reading the peak resident size (C allocations included, which
# tracemalloc does not see) before and after.  The peak is VmHWM, not getrusage's ru_maxrss:
# Linux carries ru_maxrss over exec from the forking process (pytest, far bigger than this probe),
# which would hide any growth; VmHWM belongs to the new process image.
_RSS_PROBE = """
import json, sys, time
import pyk._native as native
from tests.adversity.wire import record_batch

def kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

path, codec, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "rb") as f:
    section = f.read()
batch = record_batch([(b"k", b"v")], codec=codec, records_section=section)
peak, now, start = kib("VmHWM"), kib("VmRSS"), time.monotonic()
out = {"input": len(section)}
try:
    native.decompress(codec, section, cap)
    out["decompress"] = "ok"
except ValueError:
    out["decompress"] = "refused"
out["validate"] = native.validate_batch(batch, 1 << 30, True, cap)
try:
    native.recompress_batch(batch, 0, cap)
    out["recompress"] = "ok"
except ValueError:
    out["recompress"] = "refused"
out["seconds"] = time.monotonic() - start
out["peak_growth_kib"] = kib("VmHWM") - peak
out["kept_kib"] = kib("VmRSS") - now
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_memory_stays_bounded(name, tmp_path):
    """A 1 GiB bomb (256 MiB for snappy's xerial framing, whose ratio is ~20:1) under a 20 MiB
    bound: refused by decompress, validate_batch and recompress_batch, with the process's peak
    RSS growing by a few times the bound at most (output buffer, its last realloc, zstd's
    window) instead of by the expanded size.  What stays resident afterwards is at most about
    one bound: the buffers are freed, but glibc may keep a freed block of that size in its heap
    for reuse (its mmap threshold adapts to freed sizes)."""
    codec, build = BOMBS[name]
    bomb = tmp_path / "bomb"
    bomb.write_bytes(build((256 << 20) if name == "snappy-xerial" else (1 << 30)))
    cap = 20 << 20
    root = Path(__file__).parents[2]
    proc = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(bomb), str(codec), str(cap)], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    print(name, out)
    assert out["decompress"] == out["recompress"] == "refused"
    assert out["validate"] in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.CORRUPT_MESSAGE)
    assert out["peak_growth_kib"] < (3 * cap + (16 << 20)) // 1024, out
    assert out["kept_kib"] < (cap + (8 << 20)) // 1024, out
