"""``qtasks.asyncio.QueueTasks``: the async face of the app (every call is awaited)."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union
from uuid import UUID

from qtasks.base.qtasks import BaseQueueTasks, TaskCall
from qtasks.registries.task import AsyncTask
from qtasks.schemas.task import Task


class QueueTasks(BaseQueueTasks):
    """A task-queue app for asyncio code. Safe to share between tasks, loops and threads."""

    _method = "async"
    _task_class = AsyncTask

    async def add_task(self, task_name: str, *args: Any, priority: Optional[int] = None,
                       timeout: Optional[float] = None, **kwargs: Any) -> Optional[Task]:
        return await self._add_task_call(task_name, args, kwargs, priority, timeout).wait_async()

    async def add_tasks(self, calls: Iterable[TaskCall], *,
                        timeout: Optional[float] = None) -> list[Optional[Task]]:
        """Submit many calls in one message: ``await app.add_tasks([add(1, 2), add(3, 4)], timeout=10)``."""
        return await self._add_tasks_call(calls, timeout).wait_async()

    async def get(self, uuid: Union[UUID, str]) -> Optional[Task]:
        return await self._get_call(uuid).wait_async()

    async def broker_stats(self) -> dict[str, Any]:
        return await self._stats_call().wait_async()

    def run_forever(self, loop: Any = None, starter: Any = None, num_workers: int = 4,
                    reset_config: bool = True) -> None:
        """Serve tasks with ``num_workers`` worker processes until SIGTERM or Ctrl+C (blocks)."""
        code = self._serve(num_workers)
        if code:
            raise SystemExit(code)

    async def stop(self) -> None:
        self._stop()
