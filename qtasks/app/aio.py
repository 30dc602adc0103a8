"""``qtasks.asyncio.QueueTasks``: the async face of the app (every call is awaited)."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterable, Optional, Union
from uuid import UUID

from qtasks.app.core import BaseQueueTasks, TaskCall, stream_item
from qtasks.client.calls import unavailable
from qtasks.events import AsyncEvents
from qtasks.exc import BrokerUnavailableError
from qtasks.inert import warn_inert
from qtasks.plugins.triggers import fire
from qtasks.protocol import Dead
from qtasks.tasks.record import Task
from qtasks.tasks.registry import AsyncRegistrar


class QueueTasks(AsyncRegistrar, BaseQueueTasks):
    """A task-queue app for asyncio code. Safe to share between tasks, loops and threads."""

    _method = "async"
    _events_class = AsyncEvents

    async def add_task(self, task_name: str, *args: Any, priority: Optional[int] = None,
                       timeout: Optional[float] = None, **kwargs: Any) -> Optional[Task[Any]]:
        return await self._add_task_call(task_name, args, kwargs, priority, timeout).wait_async()

    async def add_tasks(self, calls: Iterable[TaskCall], *,
                        timeout: Optional[float] = None) -> list[Optional[Task[Any]]]:
        """Submit many calls in one message: ``await app.add_tasks([add(1, 2), add(3, 4)], timeout=10)``."""
        return await self._add_tasks_call(calls, timeout).wait_async()

    async def get(self, uuid: Union[UUID, str]) -> Optional[Task[Any]]:
        return await self._get_call(uuid).wait_async()

    async def cancel(self, uuid: Union[UUID, str], reason: str = "") -> Optional[Task[Any]]:
        """Cancel a task: a queued one at once, a running one at its next await (a plain ``def``
        task's result is discarded). Returns its record afterwards, None if unknown."""
        return await self._cancel_call(uuid, reason).wait_async()

    async def stream(self, uuid: Union[UUID, str], timeout: float = 100.0) -> AsyncIterator[Any]:
        """``async for step in app.stream(uuid)``: a generator task's steps as they happen."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        def put(item: tuple[Any, ...]) -> None:
            loop.call_soon_threadsafe(items.put_nowait, item)

        self._follow(uuid, timeout, put)
        limit = self._stream_limit(timeout)
        while True:
            try:
                item = await asyncio.wait_for(items.get(), limit)
            except asyncio.TimeoutError:
                raise unavailable(self.broker, limit) from None
            ended, value = stream_item(item)
            if ended:
                return
            yield value

    async def ping(self, server: bool = True) -> bool:
        """Whether the broker answers (within ``config.broker_connect_timeout``); ``server=False``:
        True without asking, as upstream."""
        if not server:
            return True
        try:
            await self._ping_call().wait_async()
        except BrokerUnavailableError:
            return False
        return True

    async def flush_all(self) -> None:
        """Delete the records of every ended task of this app (finished, error, cancelled); queued and
        running tasks are kept: cancel them first if they should go too."""
        await self._flush_all_call().wait_async()

    async def dead_letters(self, task_name: Optional[str] = None, limit: Optional[int] = None) -> list[Task[Any]]:
        """This app's dead letters (tasks that ended ``error`` for good), oldest first."""
        found: list[Task[Any]] = await self._dead_call("list", task_name, limit=limit).wait_async()
        return found

    async def retry_dead(self, uuid: Union[UUID, str]) -> Optional[Task[Any]]:
        """Run a dead letter again as a new task (returned); waiting on the old uuid follows it there.
        None when ``uuid`` is not a dead letter."""
        found: list[Optional[Task[Any]]] = await self._dead_call("retry", uuids=[uuid]).wait_async()
        return found[0]

    async def retry_all_dead(self, task_name: Optional[str] = None) -> list[Task[Any]]:
        """Run every dead letter of this app (of ``task_name``) again; the new tasks."""
        count: int = await self._dead_call("count", task_name).wait_async()
        retried: list[Task[Any]] = []
        for _ in range(-(-count // Dead.BATCH)):  # those there now: a retry that fails again waits
            retried += [t for t in await self._dead_call("retry", task_name).wait_async() if t is not None]
        return retried

    async def purge_dead(self, task_name: Optional[str] = None) -> int:
        """Delete this app's dead letters (of ``task_name``); how many."""
        deleted: int = await self._dead_call("purge", task_name).wait_async()
        return deleted

    async def broker_stats(self) -> dict[str, Any]:
        return await self._stats_call().wait_async()

    def run_forever(self, loop: Any = None, starter: Any = None, num_workers: int = 4,
                    reset_config: bool = True) -> None:
        """Serve tasks with ``num_workers`` worker processes until SIGTERM or Ctrl+C (blocks)."""
        if loop is not None:
            warn_inert("run_forever(loop=)")
        self._run_forever(num_workers, starter=starter, reset_config=reset_config)

    async def stop(self) -> None:
        """Stop serving (what ``run_forever`` started in this process)."""
        if self.plugins:
            await fire(self.plugins, "qtasks_stop", qtasks=self, starter=self.starter)
        self._stop()
