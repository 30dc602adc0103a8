"""``BaseTaskExecutor``: the steps that run one delivery of one task.

The worker builds one executor per delivery and awaits :meth:`execute`, which
returns the task's result (or raises what the task raised). Subclass it and pass
``@app.task(executor=MyExecutor)`` to change a step; every step is a coroutine so
an override may await.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Optional

from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema


class BaseTaskExecutor(ABC):
    def __init__(self, task_func: TaskExecSchema, task_broker: TaskPrioritySchema,
                 log: Optional[logging.Logger] = None, plugins: Optional[dict[str, list[Any]]] = None) -> None:
        self.task_func = task_func
        self.task_broker = task_broker
        self._args: list[Any] = list(task_broker.args)
        self._kwargs: dict[str, Any] = dict(task_broker.kwargs)
        self._result: Any = None
        self.echo = task_func.echo
        self.decode_cls = task_func.decode
        self.log = log or logging.getLogger("qtasks.worker")
        self.plugins = plugins if plugins is not None else {}

    async def before_execute(self) -> None:
        """Prepare ``self._args``/``self._kwargs`` for the call."""

    @abstractmethod
    async def run_task(self) -> Any:
        """Call the task function and return what it returned."""

    async def after_execute(self) -> None:
        """Inspect or replace ``self._result``."""

    async def execute(self, decode: bool = True) -> Any:
        await self.before_execute()
        self._result = await self.run_task()
        await self.after_execute()
        return self._result
