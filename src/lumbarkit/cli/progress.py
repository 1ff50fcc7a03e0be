"""Rendering of library progress events in the terminal (the library itself never prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lumbarkit.batch.run import BatchProgress


class ProgressBar:
    """A rich progress bar fed by :class:`BatchProgress` events (``update`` is the ``on_progress`` callback)."""

    def __init__(self, console, enabled: bool = True):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self._bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("ETA"),
                             TimeRemainingColumn(), console=console, disable=not enabled, transient=False)
        self._task = None

    def __enter__(self) -> "ProgressBar":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def update(self, event: BatchProgress) -> None:
        if event.message:
            self.console.print(event.message)
        if self._task is None:
            self._task = self._bar.add_task("analysing", total=event.total, failed=0)
        self._bar.update(self._task, completed=event.done, failed=event.failed)


class StageStatus:
    """A spinner on stderr naming the running stage (shown on a terminal only); ``update`` is ``on_stage``."""

    LABELS = {"load": "reading the scan", "segment": "segmenting and naming levels", "measure": "measuring",
              "grade": "grading discs and drawing evidence maps"}

    def __init__(self):
        from rich.console import Console

        self._console = Console(stderr=True)
        self._status = self._console.status("starting", spinner="dots")

    def __enter__(self) -> "StageStatus":
        if self._console.is_terminal:
            self._status.start()
        return self

    def __exit__(self, *exc) -> None:
        self._status.stop()

    def update(self, stage: str) -> None:
        self._status.update(self.LABELS.get(stage, stage))
