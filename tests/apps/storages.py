"""User storages for ``qtasks-broker --storage tests.apps.storages:<name>``."""

from __future__ import annotations

import os
from typing import Any, Iterable

from broker_daemon.records import TaskRecord
from broker_daemon.storage import MemoryStorage
from qtasks.plugins.base import BasePlugin


def record(line: str) -> None:
    with open(os.environ["STORAGE_RECORD"], "a") as out:
        out.write(line + "\n")


class Recorder(BasePlugin):
    def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
        record(name)


class RecordingStorage(MemoryStorage):
    """The memory storage, writing down what the broker asks of it."""

    def add_many(self, records: Iterable[TaskRecord]) -> None:
        records = list(records)
        record(f"add_many {len(records)}")
        super().add_many(records)

    def delete_ended(self, app: str) -> int:
        record("delete_ended")
        return super().delete_ended(app)

    def close(self) -> None:
        record("close")


def make_storage() -> RecordingStorage:
    storage = RecordingStorage("recording")
    storage.add_plugin(Recorder())
    return storage


not_a_storage = {"records": []}


def failing_factory() -> None:
    raise OSError("disk on fire")
