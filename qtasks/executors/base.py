"""``BaseTaskExecutor``: the steps that run one delivery of one task.

The worker builds one executor per delivery and awaits :meth:`execute`, which returns
the task's result (or raises what the task raised)::

    middlewares before   the task's, then the app's (app.add_middleware)
    before_execute       self for echo=True, pydantic models, Depends values, State instances
    run_task             call the function (abstract); max_time bounds it
    after_execute        a pydantic model result becomes a dict
    middlewares after
    decode               the task's decode= callable, if any
    (always)             close the task-scoped dependencies, newest first

A middleware is ``cls(executor)`` then called (awaited if it returns an awaitable); it
may change ``executor._args``, ``_kwargs`` or ``_result``. Subclass this and pass
``@app.task(executor=MyExecutor)`` to change a step; every step is a coroutine.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

from qtasks.executors.arguments import injections
from qtasks.executors.dependencies import Teardown, close
from qtasks.executors.models import build_model, dump_model
from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema

StepReporter = Callable[[int, Any], None]


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
        self.step_reporter: Optional[StepReporter] = None
        """Set by the worker: called with (index, value) for every step a generator task yields."""
        self._teardowns: list[Teardown] = []

    # ------------------------------------------------------------------ steps

    async def execute_middlewares_before(self) -> None:
        await self._run_middlewares(self.task_func.middlewares_before,
                                    self._worker_middlewares("task_middlewares_before"))

    async def before_execute(self) -> None:
        """Fill in what the worker provides: ``self``, pydantic models, Depends values, State instances."""
        if self.echo:
            self._args.insert(0, self._echo_object())
        build_model(self.task_func.func, self._args, self._kwargs, skip_first=self.echo)
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
        """Inspect or replace ``self._result``; a pydantic model becomes a dict here."""
        self._result = dump_model(self._result)

    async def execute_middlewares_after(self) -> None:
        await self._run_middlewares(self.task_func.middlewares_after,
                                    self._worker_middlewares("task_middlewares_after"))

    async def decode(self) -> Any:
        """The result as stored: ``decode=`` applied (sync or async), else unchanged."""
        if self.decode_cls is None:
            return self._result
        value = self.decode_cls(self._result)
        return await value if inspect.isawaitable(value) else value

    async def execute(self, decode: bool = True) -> Any:
        try:
            await self.execute_middlewares_before()
            await self.before_execute()
            self._result = await self.run_task()
            await self.after_execute()
            await self.execute_middlewares_after()
            if decode:
                self._result = await self.decode()
        except BaseException:
            if self._teardowns:
                await close(self._teardowns, self._owner())  # the task's own error is the one to report
            raise
        if self._teardowns:
            failure = await close(self._teardowns, self._owner())
            if failure is not None:
                raise failure
        return self._result

    def _owner(self) -> str:
        return f"task {self.task_func.name} {self.task_broker.uuid}"

    # ------------------------------------------------------------------ helpers

    def _worker_middlewares(self, attribute: str) -> list[type]:
        return getattr(self.app.worker, attribute)

    async def _run_middlewares(self, *groups: list[type]) -> None:
        for group in groups:
            if not group:
                continue
            for middleware in group:
                outcome = middleware(self)()
                if inspect.isawaitable(outcome):
                    await outcome

    def _echo_object(self) -> Any:
        """A fresh task object for ``self``, bound to this app, its ``ctx`` knowing this task."""
        from qtasks.registries.task import AsyncTask, SyncTask

        schema = self.task_func
        kind = AsyncTask if schema.awaiting or schema.generating == "async" else SyncTask
        task = kind(task_name=schema.name, priority=schema.priority, echo=schema.echo,
                    max_time=schema.max_time, retry=schema.retry, retry_on_exc=schema.retry_on_exc,
                    decode=schema.decode, tags=schema.tags, description=schema.description,
                    generate_handler=schema.generate_handler, executor=schema.executor,
                    middlewares_before=schema.middlewares_before,
                    middlewares_after=schema.middlewares_after, extra=schema.extra, app=self.app)
        task.ctx._update(task_uuid=self.task_broker.uuid)
        return task
