"""Tasks held back until a time (a retry asked for with ``Retry(delay=...)``).

The broker holds them, not a sleeping worker: a heap ordered by due time, released
into their queues when the broker's loop wakes for it.
"""

from __future__ import annotations

import heapq
import time


class DelayedTasks:
    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, bytes]] = []

    def add(self, due: float, uuid: bytes) -> None:
        heapq.heappush(self._heap, (due, uuid))

    def timeout(self) -> float | None:
        """Seconds until the next one is due, or None."""
        return max(0.0, self._heap[0][0] - time.time()) if self._heap else None

    def due(self) -> list[bytes]:
        """The uuids whose time has come, removed from the heap."""
        now = time.time()
        ready = []
        while self._heap and self._heap[0][0] <= now:
            ready.append(heapq.heappop(self._heap)[1])
        return ready

    def __len__(self) -> int:
        return len(self._heap)
