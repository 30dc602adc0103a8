"""Clients waiting for tasks to end, so results are pushed instead of polled.

Each registration carries a deadline (the client's own timeout plus a margin):
clients that went away are forgotten when it passes, so waiters never pile up.
"""

from __future__ import annotations

import heapq


class Waiters:
    __slots__ = ("_by_uuid", "_deadlines")

    def __init__(self) -> None:
        self._by_uuid: dict[bytes, dict[bytes, float]] = {}
        self._deadlines: list[tuple[float, bytes, bytes]] = []

    def add(self, uuid: bytes, peer: bytes, deadline: float) -> None:
        peers = self._by_uuid.setdefault(uuid, {})
        if peers.get(peer, 0.0) < deadline:
            peers[peer] = deadline
            heapq.heappush(self._deadlines, (deadline, uuid, peer))

    def pop(self, uuid: bytes) -> list[bytes]:
        """The peers waiting for ``uuid``, forgetting them."""
        return list(self._by_uuid.pop(uuid, ()))

    def expire(self, now: float) -> int:
        """Forget registrations whose deadline passed; returns how many."""
        expired = 0
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, uuid, peer = heapq.heappop(heap)
            peers = self._by_uuid.get(uuid)
            if peers is not None and peers.get(peer) == deadline:
                del peers[peer]
                expired += 1
                if not peers:
                    del self._by_uuid[uuid]
        return expired

    def __len__(self) -> int:
        return sum(len(peers) for peers in self._by_uuid.values())
