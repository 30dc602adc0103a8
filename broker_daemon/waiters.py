"""Clients waiting for tasks, so results and steps are pushed instead of polled.

Each registration carries a deadline (the client's own timeout plus a margin):
clients that went away are forgotten when it passes, so waiters never pile up. It
also carries the uuid the client asked about, which differs from the task it now
waits on once a retry chain moved it along::

    by_uuid  {task uuid: {peer: (deadline, uuid the peer asked about)}}
    by_peer  {peer: {task uuid, ...}}       (to forget a client whose connection closed)
"""

from __future__ import annotations

import heapq


class Waiters:
    __slots__ = ("_by_uuid", "_by_peer", "_deadlines", "_count")

    def __init__(self) -> None:
        self._by_uuid: dict[bytes, dict[bytes, tuple[float, bytes]]] = {}
        self._by_peer: dict[bytes, set[bytes]] = {}
        self._deadlines: list[tuple[float, bytes, bytes]] = []
        """Every registration's deadline, also of ones answered since (they are skipped when due, and
        swept out once they are most of the heap, so answered waits cost no memory for long)."""
        self._count = 0

    def add(self, uuid: bytes, peer: bytes, deadline: float, asked: bytes | None = None) -> None:
        peers = self._by_uuid.setdefault(uuid, {})
        current = peers.get(peer)
        if current is None or current[0] < deadline:
            if current is None:
                self._count += 1
            peers[peer] = (deadline, asked or uuid)
            heapq.heappush(self._deadlines, (deadline, uuid, peer))
            self._by_peer.setdefault(peer, set()).add(uuid)

    def pop(self, uuid: bytes) -> list[tuple[bytes, float, bytes]]:
        """(peer, deadline, uuid it asked about) of everyone waiting for ``uuid``, forgetting them."""
        peers = self._by_uuid.pop(uuid, None)
        if not peers:
            return []
        for peer in peers:
            self._unlink(peer, uuid)
        self._answered(len(peers))
        return [(peer, deadline, asked) for peer, (deadline, asked) in peers.items()]

    def _answered(self, count: int) -> None:
        self._count -= count
        heap = self._deadlines
        if len(heap) > 1024 and len(heap) > 4 * self._count:
            by_uuid = self._by_uuid
            self._deadlines = [entry for entry in heap if entry[2] in by_uuid.get(entry[1], ())
                               and by_uuid[entry[1]][entry[2]][0] == entry[0]]
            heapq.heapify(self._deadlines)

    def drop_peer(self, peer: bytes) -> int:
        """Forget everything ``peer`` waits for; returns how many registrations went."""
        uuids = self._by_peer.pop(peer, ())
        for uuid in uuids:
            peers = self._by_uuid.get(uuid)
            if peers is not None:
                peers.pop(peer, None)
                if not peers:
                    del self._by_uuid[uuid]
        self._answered(len(uuids))
        return len(uuids)

    def _unlink(self, peer: bytes, uuid: bytes) -> None:
        uuids = self._by_peer.get(peer)
        if uuids is not None:
            uuids.discard(uuid)
            if not uuids:
                del self._by_peer[peer]

    def entries(self, uuid: bytes) -> list[tuple[bytes, float, bytes]]:
        """Like :meth:`pop`, without forgetting them."""
        return [(peer, deadline, asked) for peer, (deadline, asked) in self._by_uuid.get(uuid, {}).items()]

    def expire(self, now: float) -> int:
        """Forget registrations whose deadline passed; returns how many."""
        expired = 0
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, uuid, peer = heapq.heappop(heap)
            peers = self._by_uuid.get(uuid)
            if peers is not None and peer in peers and peers[peer][0] == deadline:
                del peers[peer]
                self._unlink(peer, uuid)
                self._count -= 1
                expired += 1
                if not peers:
                    del self._by_uuid[uuid]
        return expired

    def __len__(self) -> int:
        return self._count
