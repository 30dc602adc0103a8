"""``BaseTaskExecutor``: the steps that run one delivery of one task.

The worker builds one executor per delivery and awaits :meth:`execute`, which returns
the task's result (or raises what the task raised). It runs only from what it is given:
the task (``task_func``), the delivery (``task_broker``), the worker's ``plugins``, and a
:class:`ExecutorRuntime` (how to make ``self`` for ``echo=True``, the app-wide
middlewares, the app tasks run for)::

    middlewares before   the task's, then the app's (app.add_middleware)
    before_execute       self for echo=True; task_executor_args_replace: plugins fill
                         parameters in (the built-in ones: pydantic models, Depends, State)
    run_task             call the function (abstract); max_time bounds it
    after_execute        task_executor_after_execute_result_replace (a model becomes a dict)
    middlewares after
    decode               the task's decode= callable, if any; task_executor_decode
    (always)             close what the execution opened (teardowns), newest first;
                         task_executor_task_close

A middleware is ``cls(executor)`` then called (awaited if it returns an awaitable); it
may change ``executor._args``, ``_kwargs`` or ``_result``. Subclass this and pass
``@app.task(executor=MyExecutor)`` to change a step; every step is a coroutine. A plugin
that fails during these steps fails the task with ``TaskPluginTriggerError``.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional
from uuid import UUID

from qtasks.exc import TaskPluginTriggerError
from qtasks.executors.arguments import args_info
from qtasks.executors.teardown import Teardown, close
from qtasks.plugins.triggers import GLOBALS, Plugins, add_plugin, fire
from qtasks.tasks.spec import TaskExecSchema, TaskPrioritySchema

StepReporter = Callable[[int, Any], None]
_NO_ANSWER: dict[str, Any] = {}
SelfFactory = Callable[[TaskExecSchema, UUID], Any]


def unbound_self(schema: TaskExecSchema, uuid: UUID) -> Any:
    """``self`` for an echo task run outside a worker: a task object of the current app."""
    from qtasks.tasks.registry import task_object

    task = task_object(schema, None, None)
    task.ctx._update(task_uuid=uuid)
    return task


@dataclass
class ExecutorRuntime:
    """What the worker gives every executor besides the task and its delivery."""

    make_self: SelfFactory = unbound_self
    """Builds the ``self`` of an ``echo=True`` task, bound to the app, knowing the task's uuid."""
    middlewares_before: list[type] = field(default_factory=list)
    middlewares_after: list[type] = field(default_factory=list)
    app: Any = None
    """The app tasks run for (State instances and contexts are bound to it); None: the current one."""


class BaseTaskExecutor(ABC):
    def __init__(self, task_func: TaskExecSchema, task_broker: TaskPrioritySchema,
                 log: Optional[logging.Logger] = None, plugins: Optional[Plugins] = None,
                 *, runtime: Optional[ExecutorRuntime] = None) -> None:
        self.task_func = task_func
        self.task_broker = task_broker
        self._args: list[Any] = list(task_broker.args)
        self._kwargs: dict[str, Any] = dict(task_broker.kwargs)
        self._result: Any = None
        self.echo = task_func.echo
        self.decode_cls = task_func.decode
        self.log = log or logging.getLogger("qtasks.worker")
        self.plugins: Plugins = plugins if plugins is not None else {}
        self.runtime = runtime or ExecutorRuntime()
        self.step_reporter: Optional[StepReporter] = None
        """Set by the worker: called with (index, value) for every step a generator task yields."""
        self.teardowns: list[Teardown] = []
        """What this execution opened (task-scoped dependencies ...): closed when it ends."""
        self._config: Any = None
        self.call_seconds: Optional[float] = None
        """How long the task function itself ran in its thread (not the wait for one): tells the
        worker whether calls of the task are short enough to run on its loop."""
        self.inline = False
        """Run a plain ``def`` task on the loop itself, not in a thread: set for the short calls of a
        map, which would spend more on the thread hop than on the call (see ``TaskRunner.run_chunk``)."""

    # ------------------------------------------------------------------ as a component (spec §9)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def config(self) -> Any:
        """The app's ``QueueConfig`` (or what ``update_config`` set for this execution)."""
        if self._config is None and self.runtime.app is not None:
            return self.runtime.app.config
        return self._config

    @property
    def events(self) -> Any:
        return getattr(self.runtime.app, "events", None)

    def update_config(self, config: Any) -> None:
        self._config = config

    def add_plugin(self, plugin: Any, trigger_names: Optional[Iterable[str]] = None) -> None:
        """Add ``plugin`` for this execution only (the worker's plugins are left as they are)."""
        self.plugins = {name: list(found) for name, found in self.plugins.items()}
        add_plugin(self.plugins, plugin, trigger_names)

    # ------------------------------------------------------------------ steps

    async def execute_middlewares_before(self) -> None:
        await self._run_middlewares("middlewares_before", self.task_func.middlewares_before,
                                    self.runtime.middlewares_before)

    async def before_execute(self) -> None:
        """``self`` for echo=True, then the plugins fill parameters in (``task_executor_args_replace``)."""
        if self.echo:
            self._args.insert(0, self.runtime.make_self(self.task_func, self.task_broker.uuid))
        if self._listened("task_executor_args_replace"):
            answer = await self.trigger("task_executor_args_replace", args=self._args, kw=self._kwargs,
                                        args_info=args_info(self.task_func.func))
            if answer.get("args") is not None:
                self._args = list(answer["args"])
            if answer.get("kw") is not None:
                self._kwargs = dict(answer["kw"])
        await self.trigger("task_executor_before_execute")

    @abstractmethod
    async def run_task(self) -> Any:
        """Call the task function and return what it returned."""

    async def after_execute(self) -> None:
        """Inspect or replace ``self._result`` (plugins: a pydantic model becomes a dict here)."""
        await self.trigger("task_executor_after_execute")
        answer = await self.trigger("task_executor_after_execute_result_replace", result=self._result)
        if "result" in answer:
            self._result = answer["result"]

    async def execute_middlewares_after(self) -> None:
        await self._run_middlewares("middlewares_after", self.task_func.middlewares_after,
                                    self.runtime.middlewares_after)

    async def decode(self) -> Any:
        """The result as stored: ``decode=`` applied (sync or async), else unchanged."""
        result = self._result
        if self.decode_cls is not None:
            result = self.decode_cls(result)
            if inspect.isawaitable(result):
                result = await result
        answer = await self.trigger("task_executor_decode", result=result)
        return answer.get("result", result)

    async def execute(self, decode: bool = True) -> Any:
        try:
            await self.execute_middlewares_before()
            await self.before_execute()
            self._result = await self._run_with_plugins()
            await self.after_execute()
            await self.execute_middlewares_after()
            if decode:
                self._result = await self.decode()
        except BaseException:
            await close(self.teardowns, self._owner())  # the task's own error is the one to report
            raise
        finally:
            await self.trigger("task_executor_task_close", task_func=self.task_func,
                               task_broker=self.task_broker)
        failure = await close(self.teardowns, self._owner())
        if failure is not None:
            raise failure
        return self._result

    async def trigger(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """Fire a ``task_executor_*`` trigger at the worker's plugins; a failing plugin fails the task."""
        if not self._listened(name):
            return _NO_ANSWER
        return await fire(self.plugins, name, strict=True, task_executor=self, **kwargs)

    def _listened(self, name: str) -> bool:
        plugins = self.plugins
        return bool(plugins) and (name in plugins or GLOBALS in plugins)

    def on_close(self, teardown: Teardown) -> None:
        """Run ``teardown`` when this execution ends, whatever the outcome (newest first)."""
        self.teardowns.append(teardown)

    # ------------------------------------------------------------------ helpers

    async def _run_with_plugins(self) -> Any:
        try:
            result = await self.run_task()
        except TaskPluginTriggerError as exc:  # raised by the task for the plugins to handle
            answer = await self.trigger("task_executor_run_task_trigger_error", task_func=self.task_func,
                                        task_broker=self.task_broker, e=exc)
            if "result" not in answer:
                raise
            return answer["result"]
        name = "task_executor_run_task_gen" if self.task_func.generating else "task_executor_run_task"
        key = "results" if self.task_func.generating else "result"
        answer = await self.trigger(name, **{key: result})
        return answer.get(key, result)

    def _owner(self) -> str:
        return f"task {self.task_func.name} {self.task_broker.uuid}"

    async def _run_middlewares(self, which: str, *groups: list[type]) -> None:
        await self.trigger("task_executor_middlewares_execute", **{which: [m for g in groups for m in g]})
        for group in groups:
            for middleware in group:
                outcome = middleware(self)()
                if inspect.isawaitable(outcome):
                    await outcome
