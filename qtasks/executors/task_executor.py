"""The default executor: ``async def`` tasks on the worker's event loop, plain ``def``
tasks in a worker thread, so a blocking function never stalls the loop (heartbeats,
other tasks)."""

from __future__ import annotations

from typing import Any

from qtasks.executors.base import BaseTaskExecutor
from qtasks.executors.threads import run_in_thread


class AsyncTaskExecutor(BaseTaskExecutor):
    async def run_task(self) -> Any:
        func = self.task_func.func
        if self.task_func.awaiting:
            return await func(*self._args, **self._kwargs)
        return await run_in_thread(func, *self._args, **self._kwargs)
