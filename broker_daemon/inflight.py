"""The in-flight table: which worker runs which delivery (uuid, attempt) right now."""

from __future__ import annotations


class InFlightTable:
    __slots__ = ("_by_uuid", "_by_worker")

    def __init__(self) -> None:
        self._by_uuid: dict[bytes, tuple[bytes, int]] = {}
        self._by_worker: dict[bytes, dict[bytes, int]] = {}

    def add(self, uuid: bytes, worker: bytes, attempt: int) -> None:
        self._by_uuid[uuid] = (worker, attempt)
        self._by_worker.setdefault(worker, {})[uuid] = attempt

    def get(self, uuid: bytes) -> tuple[bytes, int] | None:
        return self._by_uuid.get(uuid)

    def remove(self, uuid: bytes) -> None:
        worker, _ = self._by_uuid.pop(uuid)
        self._by_worker[worker].pop(uuid, None)

    def held(self, worker: bytes) -> list[bytes]:
        """The uuids ``worker`` runs now."""
        return list(self._by_worker.get(worker, ()))

    def pop_worker(self, worker: bytes) -> dict[bytes, int]:
        """Forget every delivery held by ``worker``; returns them as {uuid: attempt}."""
        held = self._by_worker.pop(worker, {})
        for uuid in held:
            del self._by_uuid[uuid]
        return held

    def __len__(self) -> int:
        return len(self._by_uuid)
