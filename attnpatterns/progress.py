"""Progress bars (rich), quiet when not asked for or not on a terminal."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_iter(it: Iterable[T], total: int | None = None, description: str = "", show: bool = True) -> Iterator[T]:
    if not show or not sys.stderr.isatty():
        yield from it
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*cols, transient=False) as prog:
        task = prog.add_task(description, total=total)
        for x in it:
            yield x
            prog.advance(task)
