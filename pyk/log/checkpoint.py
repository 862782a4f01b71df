"""Kafka-format checkpoint files: small text files mapping keys to offsets, replaced atomically.

Owns the two shapes Kafka uses (CheckpointFile.java, OffsetCheckpointFile.scala,
LeaderEpochCheckpointFile.java)::

    <version>            always 0
    <count>              number of entry lines that follow
    <entry>              `topic partition offset`   (offset checkpoints, one per log dir)
    ...                  `epoch start_offset`       (leader-epoch-checkpoint, one per partition)

Writers replace the whole file through `files.write_atomic` (tmp + fsync + rename + dir fsync),
so a reader sees either the previous or the next complete file, never a mix.  A file that does
not parse is reported with `CheckpointError`; callers decide whether that is fatal (Kafka treats
a corrupt checkpoint as a start-up failure for the log dir, pyk's LogManager instead falls back
to the safe values: recovery point 0, log start offset from the first segment).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from pyk.log.files import write_atomic

CHECKPOINT_VERSION = 0


class CheckpointError(ValueError):
    """A checkpoint file that is not in the expected format."""


def _render(entries: Iterable[str], count: int) -> bytes:
    lines = [str(CHECKPOINT_VERSION), str(count), *entries]
    return ("\n".join(lines) + "\n").encode()


def _parse(path: str, fields: int) -> list[list[str]]:
    """The entry lines of a checkpoint, split into `fields` whitespace-separated parts."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if len(lines) < 2:
        raise CheckpointError(f"{path}: expected version and count lines, found {len(lines)} lines")
    if lines[0].strip() != str(CHECKPOINT_VERSION):
        raise CheckpointError(f"{path}: expected version {CHECKPOINT_VERSION}, found {lines[0]!r}")
    try:
        count = int(lines[1])
    except ValueError:
        raise CheckpointError(f"{path}: expected an entry count, found {lines[1]!r}") from None
    body = [line for line in lines[2:] if line.strip()]
    if len(body) != count:
        raise CheckpointError(f"{path}: header says {count} entries, found {len(body)}")
    out = []
    for line in body:
        parts = line.split()
        if len(parts) != fields:
            raise CheckpointError(f"{path}: expected {fields} fields per entry, found {line!r}")
        out.append(parts)
    return out


def write_offsets(path: str, offsets: Mapping[tuple[str, int], int]) -> None:
    """Writes an offset checkpoint (`topic partition offset` lines), sorted for stable diffs."""
    items = sorted(offsets.items())
    write_atomic(path, _render((f"{t} {p} {o}" for (t, p), o in items), len(items)))


def read_offsets(path: str) -> dict[tuple[str, int], int]:
    """Reads an offset checkpoint; a missing file is an empty mapping (a fresh log dir)."""
    if not os.path.exists(path):
        return {}
    out: dict[tuple[str, int], int] = {}
    for topic, part, offset in _parse(path, 3):
        try:
            out[(topic, int(part))] = int(offset)
        except ValueError:
            raise CheckpointError(f"{path}: bad entry {topic} {part} {offset}") from None
    return out


def write_epochs(path: str, epochs: Iterable[tuple[int, int]]) -> None:
    """Writes a leader-epoch-checkpoint: `epoch start_offset` lines in epoch order."""
    items = list(epochs)
    write_atomic(path, _render((f"{e} {o}" for e, o in items), len(items)))


def read_epochs(path: str) -> list[tuple[int, int]]:
    """Reads a leader-epoch-checkpoint; a missing file is an empty list."""
    if not os.path.exists(path):
        return []
    out = []
    for epoch, offset in _parse(path, 2):
        try:
            out.append((int(epoch), int(offset)))
        except ValueError:
            raise CheckpointError(f"{path}: bad entry {epoch} {offset}") from None
    return out
