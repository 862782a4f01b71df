"""Reference record walk inside a v2 batch's records section (see ext/records.pyx for the
format and the rules)."""

from __future__ import annotations

from tests.ref.varint import read_varint, read_varlong

ERR_NONE = 0
ERR_INVALID_RECORD = 87


def _skip_bytes(data: memoryview, pos: int, end: int, nullable: bool) -> int:
    length, pos = read_varint(data[:end], pos)
    if length == -1 and nullable:
        return pos
    if length < 0 or pos + length > end:
        raise ValueError("field runs past its record")
    return pos + length


def records_walk(data: memoryview, count: int) -> int:
    """Kafka error code for count records framed exactly over data."""
    pos = 0
    try:
        for i in range(count):
            length, pos = read_varint(data, pos)
            if length < 0 or pos + length > len(data):
                return ERR_INVALID_RECORD
            end = pos + length
            record = data[:end]
            if pos + 1 > end:
                return ERR_INVALID_RECORD
            pos += 1  # attributes
            _timestamp_delta, pos = read_varlong(record, pos)
            offset_delta, pos = read_varint(record, pos)
            if offset_delta != i:
                return ERR_INVALID_RECORD
            pos = _skip_bytes(data, pos, end, True)  # key
            pos = _skip_bytes(data, pos, end, True)  # value
            header_count, pos = read_varint(record, pos)
            if header_count < 0:
                return ERR_INVALID_RECORD
            for _ in range(header_count):
                pos = _skip_bytes(data, pos, end, False)
                pos = _skip_bytes(data, pos, end, True)
            if pos != end:
                return ERR_INVALID_RECORD
    except ValueError:
        return ERR_INVALID_RECORD
    return ERR_NONE if pos == len(data) else ERR_INVALID_RECORD
