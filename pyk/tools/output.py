"""How the operator tools print: for a person at a terminal, rich tables and progress bars; for
a script reading a pipe, the same rows as tab-separated lines (a header of the column names
first) and no progress, so `cut -f`, `awk -F'\\t'` and the tests keep working."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

STDERR = Console(stderr=True)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]], header: bool = True) -> None:
    """Rows under `columns`: a rich table titled `title` on a terminal, else tab-separated lines
    (the header line only if `header`, the title not at all)."""
    console = Console()
    if not console.is_terminal:
        lines = ["\t".join(columns)] if header else []
        lines += ["\t".join(str(cell) for cell in row) for row in rows]
        if lines:
            print("\n".join(lines))
        return
    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column.lower())
    for row in rows:
        shown.add_row(*(str(cell) for cell in row))
    console.print(shown)


class ProgressBar:
    """A rich progress display on stderr when it is a terminal; `advance(n)` either way."""

    def __init__(self, what: str, total: int | None) -> None:
        self._show = STDERR.is_terminal
        self._progress = Progress(SpinnerColumn(), TextColumn(what), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=STDERR, transient=True)
        self._total = total
        self._task = TaskID(0)

    def __enter__(self) -> Callable[[int], None]:
        if not self._show:
            return lambda n: None
        self._progress.start()
        self._task = self._progress.add_task("", total=self._total)
        return lambda n: self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._show:
            self._progress.stop()
