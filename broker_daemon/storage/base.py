"""Where the broker keeps task records. Implementations: memory (default), and more to come.

A storage is a component (name, log, config, plugins): a user storage, loaded with
``qtasks-broker --storage module:factory``, subclasses this (or the memory storage) and
implements the methods below; the broker calls them on its one thread, one at a time.
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
    def __len__(self) -> int:
        """How many records are stored."""

    def close(self) -> None:
        """Release resources; the storage is not used afterwards."""
