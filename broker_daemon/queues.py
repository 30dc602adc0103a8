"""Priority queues of task uuids: lower priority number first, FIFO within a priority.

One deque per priority level plus a heap of the levels present, so push and pop
cost O(1) at a fixed level and O(log levels) when a level appears or empties::

    levels  {0: deque[u7, u9], 5: deque[u3]}     heap [0, 5]
    removed {u9}   {0: 1}                         taken out (cancelled) while waiting: skipped by pop

A task taken out (``remove``) stays in its deque until ``pop`` reaches and drops it, so removing
costs O(1); the length and ``levels`` count only the tasks still waiting.
"""

from __future__ import annotations

import heapq
from collections import deque


class PriorityQueue:
    __slots__ = ("_levels", "_heap", "_size", "_removed", "_removed_at")

    def __init__(self) -> None:
        self._levels: dict[int, deque[bytes]] = {}
        self._heap: list[int] = []
        self._size = 0
        self._removed: set[bytes] = set()
        self._removed_at: dict[int, int] = {}

    def _level(self, priority: int) -> deque[bytes]:
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = deque()
            heapq.heappush(self._heap, priority)
        return level

    def push(self, priority: int, uuid: bytes) -> None:
        """Append behind every queued task of the same priority."""
        self._level(priority).append(uuid)
        self._size += 1

    def push_front(self, priority: int, uuid: bytes) -> None:
        """Put back at the head of its priority (a task that was handed back or lost)."""
        self._level(priority).appendleft(uuid)
        self._size += 1

    def pop(self) -> bytes:
        """Take the next task; raises IndexError when empty."""
        while True:
            priority = self._heap[0]
            level = self._levels[priority]
            uuid = level.popleft()
            if not level:
                heapq.heappop(self._heap)
                del self._levels[priority]
            if self._removed and uuid in self._removed:
                self._removed.discard(uuid)
                self._removed_at[priority] -= 1
                continue
            self._size -= 1
            return uuid

    def remove(self, priority: int, uuid: bytes) -> None:
        """Take ``uuid`` (queued at ``priority``, not removed yet) out of line."""
        self._removed.add(uuid)
        self._removed_at[priority] = self._removed_at.get(priority, 0) + 1
        self._size -= 1

    def levels(self) -> dict[int, int]:
        """How many tasks wait at each priority."""
        removed = self._removed_at
        counts = {priority: len(level) - removed.get(priority, 0) for priority, level in list(self._levels.items())}
        return {priority: count for priority, count in counts.items() if count > 0}

    def __len__(self) -> int:
        return self._size
