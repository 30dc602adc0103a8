"""The default executor: ``async def`` tasks on the worker's event loop, plain ``def``
tasks in a worker thread, so a blocking function never stalls the loop (heartbeats,
other tasks)."""

from __future__ import annotations

import asyncio
import contextvars
from functools import partial
from typing import Any

from qtasks.executors.base import BaseTaskExecutor


class AsyncTaskExecutor(BaseTaskExecutor):
    async def run_task(self) -> Any:
        func = self.task_func.func
        if self.task_func.awaiting:
            return await func(*self._args, **self._kwargs)
        # The loop's default executor is the worker process's task thread pool (one thread
        # per slot); the copied context carries context variables into the thread.
        call = partial(contextvars.copy_context().run, func, *self._args, **self._kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, call)
