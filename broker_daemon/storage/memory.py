"""Records in a dict: fast, and gone when the broker stops."""

from __future__ import annotations

from typing import Iterable

from broker_daemon.records import TaskRecord
from broker_daemon.storage.base import Storage


class MemoryStorage(Storage):
    def __init__(self, name: str = "memory") -> None:
        super().__init__(name)
        self._records: dict[bytes, TaskRecord] = {}

    def add_many(self, records: Iterable[TaskRecord]) -> None:
        self._records.update((r.envelope.uuid, r) for r in records)

    def get(self, uuid: bytes) -> TaskRecord | None:
        return self._records.get(uuid)

    def save(self, record: TaskRecord) -> None:
        pass

    def delete_ended(self, app: str) -> int:
        gone = [uuid for uuid, r in self._records.items() if r.ended and r.envelope.queue == app]
        for uuid in gone:
            del self._records[uuid]
        return len(gone)

    def __len__(self) -> int:
        return len(self._records)
