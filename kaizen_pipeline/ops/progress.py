"""Progress on the terminal for long operations (backups, restores, maintenance, replays, benchmarks).

``terminal_progress(what)`` yields ``report(phase, done=None, total=None)``: each new phase gets its
own bar (a spinner while its size is unknown) with the elapsed time. It draws on stderr and only
when stderr is a terminal, so scripts, pipes and CI logs get the results alone. Pure: rich only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Report = Callable[..., None]


@contextmanager
def terminal_progress(what: str, *, unit: str = "bytes") -> Iterator[Report]:
    """Bars for ``what``'s phases; ``unit`` "bytes" shows sizes (MB), anything else counts (3/10 days)."""
    if not sys.stderr.isatty():
        yield lambda _phase, _done=None, _total=None: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    amount = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), amount, TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        current = {"phase": "", "task": bar.add_task(what, total=None)}

        def report(phase: str, done: int | None = None, total: int | None = None) -> None:
            if phase != current["phase"]:  # a new phase: a new bar
                bar.remove_task(current["task"])
                current["phase"], current["task"] = phase, bar.add_task(f"{what}: {phase}", total=total)
            bar.update(current["task"], completed=done or 0)

        yield report
