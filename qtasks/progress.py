"""Progress where a person waits: one helper for every long operation (a batch ``map``, the
broker's recovery of a large data directory, ``dead retry --all``).

``progress_reporter(True, total)`` draws a ``tqdm`` bar on stderr (done, rate, time left);
a callable is handed ``(done, total)`` instead, for programs that show progress their own way.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

Progress = Union[bool, Callable[[int, Optional[int]], Any]]
"""``False`` (none), ``True`` (a bar on stderr) or a callable receiving ``(done, total)``."""


class ProgressReporter:
    """Counts handed to a bar or to a callable; ``close()`` ends the bar."""

    def __init__(self, report: Callable[[int, Optional[int]], Any], total: Optional[int],
                 close: Callable[[], Any] | None = None) -> None:
        self._report = report
        self.total = total
        self._close = close

    def __call__(self, done: int) -> None:
        self._report(done, self.total)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None


def progress_reporter(progress: Progress, total: Optional[int], *, unit: str = "item",
                      description: Optional[str] = None) -> Optional[ProgressReporter]:
    """The reporter ``progress`` asks for, or None when it asks for none."""
    if progress is False or progress is None:
        return None
    if callable(progress):
        return ProgressReporter(progress, total)
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=description, dynamic_ncols=True)  # stderr, rate and ETA

    def update(done: int, _: Optional[int]) -> None:
        bar.update(done - bar.n)

    return ProgressReporter(update, total, bar.close)
