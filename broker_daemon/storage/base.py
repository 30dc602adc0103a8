"""Where the broker keeps task records. Implementations: memory (default) and SQLite (``--data-dir``).

A storage is a component (name, log, config, plugins): a user storage, loaded with
``qtasks-broker --storage module:factory``, subclasses this (or the memory storage) and
implements the abstract methods below; the broker calls them on its one thread, one at a
time, so a storage needs no locks. The broker changes records in place and calls ``save``
after every change, then ``commit`` once per turn of its loop, before it answers anyone:
an answer means "stored". Plugins the factory adds to the storage get ``storage_start``,
``storage_stop`` and ``storage_flush_all``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable, Optional

from broker_daemon.records import TaskRecord
from qtasks.components import Component

Namespace = tuple[str, str, str]
MAX_SCAN = 200_000
"""Records one listing (``Storage.records``) looks at, at most."""


class Storage(Component, ABC):
    durable = False
    """Whether records outlive the broker process (then it restores them at start)."""

    @abstractmethod
    def add_many(self, records: Iterable[TaskRecord]) -> None:
        """Store new records."""

    @abstractmethod
    def get(self, uuid: bytes) -> TaskRecord | None:
        """The record of ``uuid``, or None."""

    def known(self, uuids: Iterable[bytes]) -> set[bytes]:
        """Which of ``uuids`` have a record (one question for a whole submit)."""
        return {uuid for uuid in uuids if self.get(uuid) is not None}

    @abstractmethod
    def save(self, record: TaskRecord) -> None:
        """The broker changed ``record`` in place: keep the change."""

    @abstractmethod
    def delete_ended(self, app: str) -> int:
        """Delete the records of every ended task of ``app`` (the broker holds no other
        reference to them); how many were deleted."""

    @abstractmethod
    def __len__(self) -> int:
        """How many records are stored."""

    def commit(self) -> None:
        """Make everything added and saved since the last commit durable (once per loop turn)."""

    def live(self) -> Iterable[TaskRecord]:
        """At start: the records that have not ended, in the order they were added."""
        return ()

    def live_count(self) -> Optional[int]:
        """How many records ``live`` will give (None: unknown); asked only for a progress bar."""
        return None

    def expire(self, ended_before: float) -> int:
        """Delete ended records (dead letters aside) last changed before ``ended_before``; how many."""
        return 0

    def dead_letters(self, app: Optional[str] = None, task_name: Optional[str] = None,
                     limit: Optional[int] = None) -> list[TaskRecord]:
        """Dead letters (tasks that ended ``error`` for good) of ``app`` and ``task_name`` (None: any),
        oldest first."""
        return []

    def dead_count(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        return 0

    def dead_counts(self) -> dict[str, int]:
        """How many dead letters each queue (app) has."""
        return {}

    def records(self, *, status: Optional[str] = None, name: Optional[str] = None, app: Optional[str] = None,
                limit: int = 50) -> list[TaskRecord]:
        """The newest records (last submitted first) of ``status``, task ``name`` and ``app`` (None: any),
        at most ``limit``. Operators ask for them (``qtasks tasks``); a storage may look at only the
        newest ``MAX_SCAN`` records to find them, so one question never holds the broker up for long."""
        return []

    def delete_dead(self, app: Optional[str] = None, task_name: Optional[str] = None) -> int:
        """Delete the dead letters of ``app`` and ``task_name`` (None: any); how many."""
        return 0

    def load_state(self) -> dict[Namespace, dict[str, Any]]:
        """At start: the State namespaces kept last time."""
        return {}

    def save_state(self, namespace: Namespace, cleared: bool, keys: dict[str, Any]) -> None:
        """Keep a namespace's changes: ``cleared`` (every key gone first), then ``keys`` set to their
        values (``broker_daemon.state.DELETED``: removed)."""

    def start(self) -> None:
        """The broker starts serving: fires ``storage_start`` on this storage's plugins."""
        self._trigger_sync("storage_start", storage=self)

    def stop(self) -> None:
        """The broker stops serving (``close`` follows): fires ``storage_stop``."""
        self._trigger_sync("storage_stop", storage=self)

    def close(self) -> None:
        """Release resources; the storage is not used afterwards."""
