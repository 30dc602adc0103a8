"""The broker component: the app's side of the broker, which takes envelopes and answers about tasks.

Every request method returns a ``concurrent.futures.Future`` so one implementation
serves the sync and the async face alike. Replace it to put another transport under the
API, or subclass the default (``ZmqBroker``) to watch or change what goes through.
``start``/``stop`` run in the serving process when serving starts and stops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from qtasks.components import Component
from qtasks.protocol import TaskEnvelope, TaskSnapshot

Drive = Callable[["Future[Any]", float], bool]


class BaseBroker(Component, ABC):
    url: str
    connect_timeout: float
    storage: Any
    """Where the records are kept: the broker daemon's storage, as the app sees it."""

    @abstractmethod
    def submit(self, envelopes: list[TaskEnvelope], wait: float | None = None) -> Future[Any]:
        """Accepted count; with ``wait``, the final snapshots (None where unfinished in time)."""

    def submit_pipelined(self, envelopes: list[TaskEnvelope]) -> Future[Any] | None:
        """Send ``envelopes`` without waiting for the broker to take them (None: this broker cannot;
        the caller submits and waits). A refusal then surfaces on the next request or on a wait."""
        return None

    @abstractmethod
    def wait(self, uuids: list[bytes], timeout: float) -> Future[list[TaskSnapshot | None]]:
        """Final snapshots of ``uuids`` (None where unfinished after ``timeout`` or unknown)."""

    @abstractmethod
    def get(self, uuids: list[bytes]) -> Future[list[TaskSnapshot | None]]:
        """Current snapshots of ``uuids`` (None where unknown)."""

    @abstractmethod
    def cancel(self, uuids: list[bytes], reason: str) -> Future[list[TaskSnapshot | None]]:
        """Cancel tasks; their records afterwards (None where unknown)."""

    @abstractmethod
    def watch(self, uuid: bytes, timeout: float, on_item: Callable[[tuple[Any, ...]], None]) -> None:
        """Follow a task's steps (see :meth:`qtasks.client.session.ClientSession.watch`)."""

    @abstractmethod
    def stats(self) -> Future[dict[str, Any]]:
        """Queue depths, workers, in-flight count and totals."""

    @abstractmethod
    def ping(self) -> Future[bytes]:
        """The broker's boot id."""

    @abstractmethod
    def flush(self, app: str) -> Future[int]:
        """Delete the records of every ended task of ``app``; how many went."""

    @abstractmethod
    def dead(self, op: str, app: str | None, task_name: str | None, uuids: list[bytes],
             limit: int | None) -> Future[Any]:
        """Dead letters: ``op`` is ``list``, ``retry`` or ``purge`` (see ``qtasks.protocol.Dead``)."""

    @abstractmethod
    def state(self, namespace: tuple[str, str, str], op: str, args: bytes) -> Future[bytes]:
        """Apply a State operation (``args`` and the result are msgpack)."""

    @property
    def max_message_size(self) -> int | None:
        """The largest message the broker accepts, once known (None before it answered)."""
        return None

    def use_url(self, url: str) -> None:
        """Talk to the broker at ``url`` from now on (serving points the app at the broker it serves)."""
        self.url = url

    @contextmanager
    def blocking(self) -> Iterator[Optional[Drive]]:
        """Requests made inside are for a call the current thread will block on.

        It may yield ``drive(future, timeout) -> bool``: the blocked caller then runs the
        I/O of those requests itself until its future is done (None: nothing to drive).
        """
        yield None

    def start(self, worker: Any = None) -> None:
        """Serving starts (in the serving process): fires ``broker_start``."""
        self._trigger_sync("broker_start", broker=self, worker=worker)

    def stop(self) -> None:
        """Serving stops (in the serving process): fires ``broker_stop``."""
        self._trigger_sync("broker_stop", broker=self)

    def close(self) -> None:
        """Release connections; safe to call more than once."""
