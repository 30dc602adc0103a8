"""Tasks held back until a time (a retry asked for with ``Retry(delay=...)``).

The broker holds them, not a sleeping worker: a heap ordered by due time, released
into their queues when the broker's loop wakes for it.
"""

from __future__ import annotations

import heapq
import time
from typing import Callable


class DelayedTasks:
    __slots__ = ("_heap", "clock")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._heap: list[tuple[float, bytes]] = []
        self.clock = clock
        """Wall-clock time: due times survive a broker restart."""

    def add(self, due: float, uuid: bytes) -> None:
        heapq.heappush(self._heap, (due, uuid))

    def timeout(self) -> float | None:
        """Seconds until the next one is due, or None."""
        return max(0.0, self._heap[0][0] - self.clock()) if self._heap else None

    def due(self) -> list[bytes]:
        """The uuids whose time has come, removed from the heap."""
        now = self.clock()
        ready = []
        while self._heap and self._heap[0][0] <= now:
            ready.append(heapq.heappop(self._heap)[1])
        return ready

    def uuids(self) -> list[bytes]:
        return [uuid for _, uuid in self._heap]

    def __len__(self) -> int:
        return len(self._heap)
