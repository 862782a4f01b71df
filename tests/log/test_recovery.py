"""LogLoader: torn tails, missing/corrupt indexes, clean vs unclean start, preallocation."""

from __future__ import annotations

import os

import pytest

from tests.log.conftest import BASE_TS, batch, open_log, read_all, small_config


def fill(plog, batches: int) -> list[tuple[int, int]]:  # noqa: ANN001
    out = []
    for i in range(batches):
        info = plog.append(batch(3, ts=BASE_TS + i), BASE_TS + i)
        out.append((info.first_offset, info.last_offset))
    return out


def crash(plog) -> None:  # noqa: ANN001
    """What a kill -9 leaves: files as written (page cache), nothing trimmed or closed cleanly."""
    for segment in plog.segments:
        os.close(segment.fd)


def test_unclean_reopen_keeps_everything_written(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 40)
    crash(plog)
    # Without a clean shutdown, the active index files are still preallocated full size.
    active = plog.segments.active
    assert os.path.getsize(active.offset_index.path) == 4096
    again = open_log(log_dir, recovery_point=0, had_clean_shutdown=False)
    assert again.log_end_offset == 120 and read_all(again) == written
    assert fill(again, 1) == [(120, 122)]
    again.close()


def test_torn_tail_is_truncated(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 40)
    active = plog.segments.active
    path, size = active.log_path, active.size
    crash(plog)
    with open(path, "r+b") as fh:
        fh.truncate(size - 7)  # the last batch is torn mid-way
    again = open_log(log_dir, recovery_point=0, had_clean_shutdown=False)
    assert again.log_end_offset == written[-2][1] + 1
    assert read_all(again) == written[:-1]
    assert again.append(batch(2), BASE_TS).first_offset == written[-2][1] + 1
    assert read_all(again)[-1] == (written[-2][1] + 1, written[-2][1] + 2)
    again.close()


def test_garbage_tail_and_bad_crc_truncated(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 10)
    active = plog.segments.active
    path = active.log_path
    last_position = plog.read(written[-1][0], 1).records.position
    crash(plog)
    with open(path, "r+b") as fh:
        fh.seek(last_position + 70)
        fh.write(b"\xff")  # flips record bytes of the last batch: CRC mismatch
        fh.seek(0, 2)
        fh.write(b"\x00" * 100)  # and a zero tail, as a preallocated file has
    again = open_log(log_dir, recovery_point=0)
    assert read_all(again) == written[:-1]
    assert os.path.getsize(path) == last_position


def test_recovery_starts_at_recovery_point_segment(log_dir: str) -> None:
    plog = open_log(log_dir)
    fill(plog, 40)
    plog.flush()
    rp = plog.recovery_point
    written_after = fill(plog, 5)
    first_seg = plog.segments.first
    crash(plog)
    # Damage a segment below the recovery point: it is not CRC-scanned (its index walk still
    # lands on the file end), which is what lets start-up skip flushed data.
    with open(first_seg.log_path, "r+b") as fh:
        fh.seek(70)
        fh.write(b"\xff")
    again = open_log(log_dir, recovery_point=rp)
    assert again.log_end_offset == written_after[-1][1] + 1
    again.close()


def test_truncation_deletes_later_segments(log_dir: str) -> None:
    plog = open_log(log_dir)
    fill(plog, 40)
    segments = list(plog.segments)
    assert len(segments) >= 4
    victim = segments[1]
    crash(plog)
    with open(victim.log_path, "r+b") as fh:
        fh.truncate(victim.size - 3)
    again = open_log(log_dir, recovery_point=0)
    assert len(again.segments) == 2
    assert again.log_end_offset < segments[2].base_offset
    assert not os.path.exists(segments[2].log_path)
    assert again.append(batch(1), BASE_TS).first_offset == again.log_end_offset - 1


@pytest.mark.parametrize("damage", ["delete_index", "delete_timeindex", "zero_index", "truncate_index",
                                    "past_end", "disorder"])
def test_bad_index_rebuilt_after_clean_shutdown(log_dir: str, damage: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 40)
    segment = list(plog.segments)[1]
    index_path, time_path = segment.offset_index.path, segment.time_index.path
    entries = segment.offset_index.entries
    assert entries > 1
    plog.close()
    if damage == "delete_index":
        os.unlink(index_path)
    elif damage == "delete_timeindex":
        os.unlink(time_path)
    elif damage == "zero_index":
        with open(index_path, "r+b") as fh:
            fh.write(b"\x00" * 16)
    elif damage == "truncate_index":
        with open(index_path, "r+b") as fh:
            fh.truncate(entries * 8 - 3)
    elif damage == "past_end":
        with open(index_path, "r+b") as fh:
            fh.seek((entries - 1) * 8 + 4)
            fh.write((10**7).to_bytes(4, "big"))
    elif damage == "disorder":
        with open(index_path, "r+b") as fh:
            fh.seek(8)
            fh.write((0).to_bytes(4, "big"))
    again = open_log(log_dir, had_clean_shutdown=True, recovery_point=120)
    rebuilt = list(again.segments)[1]
    assert rebuilt.offset_index.entries == entries
    assert rebuilt.time_index.entries >= 1
    assert read_all(again) == written
    for _, last in written:
        assert again.read(last, 1).records is not None
    again.close()
    assert os.path.getsize(index_path) == entries * 8


def test_index_pointing_into_a_batch_is_rebuilt(log_dir: str) -> None:
    plog = open_log(log_dir)
    written = fill(plog, 20)
    segment = plog.segments.first
    index_path = segment.offset_index.path
    plog.close()
    with open(index_path, "r+b") as fh:  # last entry: right offset, position off by one
        data = bytearray(fh.read())
        pos = int.from_bytes(data[-4:], "big")
        data[-4:] = (pos + 1).to_bytes(4, "big")
        fh.seek(0)
        fh.write(data)
    again = open_log(log_dir, had_clean_shutdown=True, recovery_point=60)
    assert read_all(again) == written


def test_preallocated_segments(log_dir: str) -> None:
    plog = open_log(log_dir, small_config(preallocate="true"))
    written = fill(plog, 30)
    active = plog.segments.active
    assert os.path.getsize(active.log_path) == 1500  # preallocated to segment.bytes
    for segment in list(plog.segments)[:-1]:
        assert os.path.getsize(segment.log_path) == segment.size  # trimmed at roll
    crash(plog)
    again = open_log(log_dir, small_config(preallocate="true"))  # zero tail cut by recovery
    assert read_all(again) == written
    again.close()
    assert os.path.getsize(active.log_path) == again.segments.active.size
