"""Where the broker keeps task records. Implementations: memory (default), and more to come.

A storage is a component (name, log, config, plugins): a user storage, loaded with
``qtasks-broker --storage module:factory``, subclasses this (or the memory storage) and
implements the abstract methods below; the broker calls them on its one thread, one at a
time, so a storage needs no locks. The broker keeps the records it is working on (queued,
running) in memory and calls ``save`` after every change to one, so a storage that writes
through on ``add_many``/``save`` holds every record as it is. Plugins the factory adds to
the storage get ``storage_start``, ``storage_stop`` and ``storage_flush_all``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

from broker_daemon.records import TaskRecord
from qtasks.components import Component


class Storage(Component, ABC):
    @abstractmethod
    def add_many(self, records: Iterable[TaskRecord]) -> None:
        """Store new records."""

    @abstractmethod
    def get(self, uuid: bytes) -> TaskRecord | None:
        """The record of ``uuid``, or None."""

    @abstractmethod
    def save(self, record: TaskRecord) -> None:
        """Persist the changes made to ``record`` (a no-op where records live in memory)."""

    @abstractmethod
    def delete_ended(self, app: str) -> int:
        """Delete the records of every ended task of ``app`` (the broker holds no other
        reference to them); how many were deleted."""

    @abstractmethod
    def __len__(self) -> int:
        """How many records are stored."""

    def start(self) -> None:
        """The broker starts serving: fires ``storage_start`` on this storage's plugins."""
        self._trigger_sync("storage_start", storage=self)

    def stop(self) -> None:
        """The broker stops serving (``close`` follows): fires ``storage_stop``."""
        self._trigger_sync("storage_stop", storage=self)

    def close(self) -> None:
        """Release resources; the storage is not used afterwards."""
