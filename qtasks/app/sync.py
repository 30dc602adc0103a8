"""``qtasks.QueueTasks``: the sync face of the app (every call blocks the calling thread)."""

from __future__ import annotations

import queue
from typing import Any, Iterable, Iterator, Optional, Union
from uuid import UUID

from qtasks.app.core import BaseQueueTasks, TaskCall, stream_item
from qtasks.client.calls import unavailable
from qtasks.events import SyncEvents
from qtasks.exc import BrokerUnavailableError
from qtasks.plugins.triggers import fire_sync
from qtasks.protocol import Dead
from qtasks.tasks.record import Task
from qtasks.tasks.registry import SyncRegistrar


class QueueTasks(SyncRegistrar, BaseQueueTasks):
    """A task-queue app. Safe to share between threads.

    ``add_task`` returns the stored ``Task`` (status ``new``) at once, or with
    ``timeout`` waits for it to end and returns it, or None if it did not end in time.
    """

    _method = "sync"
    _events_class = SyncEvents

    def add_task(self, task_name: str, *args: Any, priority: Optional[int] = None,
                 timeout: Optional[float] = None, **kwargs: Any) -> Optional[Task[Any]]:
        return self._add_task_call(task_name, args, kwargs, priority, timeout).result()

    def add_tasks(self, calls: Iterable[TaskCall], *,
                  timeout: Optional[float] = None) -> list[Optional[Task[Any]]]:
        """Submit many calls in one message: ``app.add_tasks([add(1, 2), add(3, 4)], timeout=10)``."""
        return self._add_tasks_call(calls, timeout).result()

    def get(self, uuid: Union[UUID, str]) -> Optional[Task[Any]]:
        return self._get_call(uuid).result()

    def cancel(self, uuid: Union[UUID, str], reason: str = "") -> Optional[Task[Any]]:
        """Cancel a task: a queued one at once, a running one at its next await (a plain ``def``
        task's result is discarded). Returns its record afterwards, None if unknown."""
        return self._cancel_call(uuid, reason).result()

    def stream(self, uuid: Union[UUID, str], timeout: float = 100.0) -> Iterator[Any]:
        """The steps of a generator task as they happen (earlier ones first), until it ends."""
        items: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._follow(uuid, timeout, items.put)
        limit = self._stream_limit(timeout)
        while True:
            try:
                item = items.get(timeout=limit)
            except queue.Empty:
                raise unavailable(self.broker, limit) from None
            ended, value = stream_item(item)
            if ended:
                return
            yield value

    def ping(self, server: bool = True) -> bool:
        """Whether the broker answers (within ``config.broker_connect_timeout``); ``server=False``:
        True without asking, as upstream."""
        if not server:
            return True
        try:
            self._ping_call().result()
        except BrokerUnavailableError:
            return False
        return True

    def flush_all(self) -> None:
        """Delete the records of every ended task of this app (finished, error, cancelled); queued and
        running tasks are kept: cancel them first if they should go too."""
        self._flush_all_call().result()

    def dead_letters(self, task_name: Optional[str] = None, limit: Optional[int] = None) -> list[Task[Any]]:
        """This app's dead letters (tasks that ended ``error`` for good), oldest first."""
        found: list[Task[Any]] = self._dead_call("list", task_name, limit=limit).result()
        return found

    def retry_dead(self, uuid: Union[UUID, str]) -> Optional[Task[Any]]:
        """Run a dead letter again as a new task (returned); waiting on the old uuid follows it there.
        None when ``uuid`` is not a dead letter."""
        found: list[Optional[Task[Any]]] = self._dead_call("retry", uuids=[uuid]).result()
        return found[0]

    def retry_all_dead(self, task_name: Optional[str] = None) -> list[Task[Any]]:
        """Run every dead letter of this app (of ``task_name``) again; the new tasks."""
        count: int = self._dead_call("count", task_name).result()
        retried: list[Task[Any]] = []
        for _ in range(-(-count // Dead.BATCH)):  # those there now: a retry that fails again waits
            retried += [t for t in self._dead_call("retry", task_name).result() if t is not None]
        return retried

    def purge_dead(self, task_name: Optional[str] = None) -> int:
        """Delete this app's dead letters (of ``task_name``); how many."""
        deleted: int = self._dead_call("purge", task_name).result()
        return deleted

    def broker_stats(self) -> dict[str, Any]:
        """Queue depths, connected workers, in-flight tasks and totals, as the broker reports them."""
        return self._stats_call().result()

    def run_forever(self, starter: Any = None, num_workers: int = 4, reset_config: bool = True) -> None:
        """Serve tasks with ``num_workers`` worker processes until SIGTERM or Ctrl+C.

        With no broker listening at the app's broker URL, one is hosted here for as long as this runs.
        """
        self._run_forever(num_workers, starter=starter, reset_config=reset_config)

    def stop(self) -> None:
        """Stop serving (what ``run_forever`` started in this process)."""
        if self.plugins:
            fire_sync(self.plugins, "qtasks_stop", qtasks=self, starter=self.starter)
        self._stop()
