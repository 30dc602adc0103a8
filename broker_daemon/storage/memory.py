"""Records in a dict: fast, and gone when the broker stops.

Ended records are kept for ``--result-ttl``; ``expired`` walks them in the order they
ended (a deque, so expiry costs nothing per task). Dead letters are indexed apart and
kept until retried or purged.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Iterable, Optional

from broker_daemon.records import TaskRecord
from broker_daemon.storage.base import MAX_SCAN, Storage


class MemoryStorage(Storage):
    def __init__(self, name: str = "memory") -> None:
        super().__init__(name)
        self._records: dict[bytes, TaskRecord] = {}
        self._ended: deque[tuple[float, bytes]] = deque()
        self._dead: dict[bytes, TaskRecord] = {}

    def add_many(self, records: Iterable[TaskRecord]) -> None:
        self._records.update((r.envelope.uuid, r) for r in records)

    def get(self, uuid: bytes) -> TaskRecord | None:
        return self._records.get(uuid)

    def known(self, uuids: Iterable[bytes]) -> set[bytes]:
        records = self._records
        return {uuid for uuid in uuids if uuid in records}

    def save(self, record: TaskRecord) -> None:
        if record.ended:
            uuid = record.envelope.uuid
            self._ended.append((record.updated_at, uuid))
            if record.dead:
                self._dead[uuid] = record
            else:
                self._dead.pop(uuid, None)

    def delete_ended(self, app: str) -> int:
        gone = [uuid for uuid, r in self._records.items() if r.ended and r.envelope.queue == app]
        for uuid in gone:
            del self._records[uuid]
            self._dead.pop(uuid, None)
        return len(gone)

    def expire(self, ended_before: float) -> int:
        expired, ended, records = 0, self._ended, self._records
        while ended and ended[0][0] < ended_before:
            stamp, uuid = ended.popleft()
            record = records.get(uuid)
            if record is not None and record.ended and not record.dead and record.updated_at == stamp:
                del records[uuid]
                expired += 1
        return expired

    def dead_letters(self, app: Optional[str] = None, task_name: Optional[str] = None,
                     limit: Optional[int] = None) -> list[TaskRecord]:
        found = [r for r in self._dead.values() if (app is None or r.envelope.queue == app)
                 and (task_name is None or r.envelope.task_name == task_name)]
        return found if limit is None else found[:limit]

    def dead_count(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        if app is None and task_name is None:
            return len(self._dead)
        return len(self.dead_letters(app, task_name))

    def dead_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._dead.values():
            queue = record.envelope.queue
            counts[queue] = counts.get(queue, 0) + 1
        return counts

    def records(self, *, status: Optional[str] = None, name: Optional[str] = None, app: Optional[str] = None,
                limit: int = 50) -> list[TaskRecord]:
        found: list[TaskRecord] = []
        if limit <= 0:
            return found
        for record in islice(reversed(self._records.values()), MAX_SCAN):
            envelope = record.envelope
            if ((status is None or record.status == status) and (name is None or envelope.task_name == name)
                    and (app is None or envelope.queue == app)):
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def delete_dead(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        gone = [r.envelope.uuid for r in self.dead_letters(app, task_name)]
        for uuid in gone:
            del self._dead[uuid]
            self._records.pop(uuid, None)
        return len(gone)

    def __len__(self) -> int:
        return len(self._records)
