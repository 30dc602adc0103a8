"""Deadlines for single-threaded poll loops (the broker loop, a client's I/O thread).

A loop asks :meth:`TimerHeap.timeout` how long it may block in ``poll`` and calls
:meth:`TimerHeap.run_due` after waking, so nothing ever sleeps waiting for time to pass.
Cancelled timers stay in the heap until they surface (lazy deletion keeps cancel O(1)).
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Callable


class Timer:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerHeap:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.clock() + delay, callback, *args)

    def timeout(self) -> float | None:
        """Seconds until the next live timer is due (0 if overdue), or None when there is none."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        if not heap:
            return None
        return max(0.0, heap[0][0] - self.clock())

    def run_due(self) -> None:
        """Run every timer whose time has come, in deadline order."""
        heap = self._heap
        now = self.clock()
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.cancelled:
                timer.callback(*timer.args)

    def __len__(self) -> int:
        return len(self._heap)
