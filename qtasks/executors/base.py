"""``BaseTaskExecutor``: the steps that run one delivery of one task.

The worker builds one executor per delivery and awaits :meth:`execute`, which returns
the task's result (or raises what the task raised)::

    before_execute   fill in Depends values and State instances the caller did not pass
    run_task         call the function (abstract)
    after_execute    inspect or replace self._result
    (always)         close the task-scoped dependencies, newest first

Subclass it and pass ``@app.task(executor=MyExecutor)`` to change a step; every step is
a coroutine so an override may await.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Optional

from qtasks.executors.arguments import injections
from qtasks.executors.dependencies import Teardown, close
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema


class BaseTaskExecutor(ABC):
    def __init__(self, task_func: TaskExecSchema, task_broker: TaskPrioritySchema,
                 log: Optional[logging.Logger] = None, plugins: Optional[dict[str, list[Any]]] = None,
                 *, app: Any = None) -> None:
        self.task_func = task_func
        self.task_broker = task_broker
        self._args: list[Any] = list(task_broker.args)
        self._kwargs: dict[str, Any] = dict(task_broker.kwargs)
        self._result: Any = None
        self.echo = task_func.echo
        self.decode_cls = task_func.decode
        self.log = log or logging.getLogger("qtasks.worker")
        self.plugins = plugins if plugins is not None else {}
        if app is None:
            from qtasks import _state

            app = _state.app_main
        self.app = app
        self._teardowns: list[Teardown] = []

    async def before_execute(self) -> None:
        """Fill in the parameters the worker provides (Depends values, State instances)."""
        for injection in injections(self.task_func.func):
            if injection.supplied(self._args, self._kwargs):
                continue
            if injection.depends is not None:
                self._kwargs[injection.name] = await self.app.worker.dependencies.resolve(
                    injection.depends, self._teardowns)
            elif injection.state is not None:
                self._kwargs[injection.name] = injection.state(self.app)

    @abstractmethod
    async def run_task(self) -> Any:
        """Call the task function and return what it returned."""

    async def after_execute(self) -> None:
        """Inspect or replace ``self._result``."""

    async def execute(self, decode: bool = True) -> Any:
        owner = f"task {self.task_func.name} {self.task_broker.uuid}"
        try:
            await self.before_execute()
            self._result = await self.run_task()
            await self.after_execute()
        except BaseException:
            await close(self._teardowns, owner)  # the task's own error is the one to report
            raise
        failure = await close(self._teardowns, owner)
        if failure is not None:
            raise failure
        return self._result
