"""Deadlines for single-threaded poll loops (the broker loop, a client's I/O thread).

A loop asks :meth:`TimerHeap.timeout` how long it may block in ``poll`` and calls
:meth:`TimerHeap.run_due` after waking, so nothing ever sleeps waiting for time to pass.
Cancelled timers stay in the heap until they surface (lazy deletion keeps cancel O(1)), but
let go of what they would have called at once, and the heap is swept when they are most of
it: a wait of seven days that ended in a second holds no memory for seven days.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Callable


class Timer:
    __slots__ = ("when", "callback", "args", "cancelled", "heap")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...],
                 heap: TimerHeap | None = None) -> None:
        self.when = when
        self.callback: Callable[..., Any] | None = callback
        self.args = args
        self.cancelled = False
        self.heap = heap

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback, self.args = None, ()
            if self.heap is not None:
                self.heap.cancelled_one()


class TimerHeap:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cancelled = 0

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(when, callback, args, self)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    def cancelled_one(self) -> None:
        """A timer in the heap was cancelled: sweep them out once they are most of it."""
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > 1024 and 2 * self._cancelled > len(heap):
            heap[:] = [entry for entry in heap if not entry[2].cancelled]  # in place: a loop may hold it
            heapq.heapify(heap)
            self._cancelled = 0

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.clock() + delay, callback, *args)

    def timeout(self) -> float | None:
        """Seconds until the next live timer is due (0 if overdue), or None when there is none."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled = max(0, self._cancelled - 1)
        if not heap:
            return None
        return max(0.0, heap[0][0] - self.clock())

    def run_due(self) -> None:
        """Run every timer whose time has come, in deadline order."""
        heap = self._heap
        now = self.clock()
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            timer.heap = None
            callback = timer.callback
            if timer.cancelled:
                self._cancelled = max(0, self._cancelled - 1)
            elif callback is not None:
                callback(*timer.args)

    def __len__(self) -> int:
        return len(self._heap)
