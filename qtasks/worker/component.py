"""``Worker``: what an app carries into each of its worker processes, and ``ServedApp``, the
narrow view of the app those processes run from.

The component (``app.worker``) holds the app's tasks, the executor class, the app-wide
middlewares and the worker's plugins; the built-in plugins (retries, pydantic models,
Depends, State) are installed on every worker, where a user sees them and may remove or
replace one by name (``qtasks.plugins.triggers.remove_plugin``). ``serve(app)`` gives a
worker process everything it needs and nothing more; ``start``/``add``/``stop`` run in each
worker process and fire ``worker_start``/``worker_add``/``worker_stop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from qtasks.executors import AsyncTaskExecutor
from qtasks.executors.base import ExecutorRuntime
from qtasks.plugins.depends.plugin import AsyncDependsPlugin
from qtasks.plugins.pydantic import AsyncPydanticWrapperPlugin
from qtasks.plugins.retries import AsyncRetryPlugin
from qtasks.plugins.states.plugin import AsyncStatePlugin
from qtasks.plugins.triggers import Plugins, fire
from qtasks.tasks.registry import task_object
from qtasks.tasks.spec import TaskExecSchema
from qtasks.worker.base import BaseWorker


@dataclass
class ServedApp:
    """What a worker process needs of the app it serves."""

    name: str
    """The app's name: the queue its workers serve."""
    lookup: Callable[[str], Optional[TaskExecSchema]]
    task_names: Callable[[], list[str]]
    executor_class: type
    plugins: Plugins
    runtime: ExecutorRuntime
    events: Any
    worker: Any
    """The component event handlers get as ``worker=``."""
    broker: Any
    """The app's broker component (broker_* triggers and plugins' ``broker=``)."""
    config: Any


class Worker(BaseWorker):
    def __init__(self, name: str = "QueueTasks", broker: Any = None, log: Any = None, config: Any = None,
                 events: Any = None, *, executor: Optional[type] = None) -> None:
        super().__init__(name, broker, log, config, events)
        self.task_executor: type = executor or AsyncTaskExecutor

    def init_plugins(self) -> None:
        """Install the built-in plugins (upstream installs the same four names on every worker)."""
        for plugin in (AsyncRetryPlugin(), AsyncPydanticWrapperPlugin(), AsyncDependsPlugin(), AsyncStatePlugin()):
            self.add_plugin(plugin, list(plugin.handlers))

    async def add(self, name: str, uuid: Any, priority: int, created_at: float, args: list[Any],
                  kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.plugins:
            return {}
        return await fire(self.plugins, "worker_add", strict=True, worker=self, task_name=name, uuid=uuid,
                          priority=priority, args=args, kw=kwargs, created_at=created_at)

    async def start(self, num_workers: Optional[int] = None) -> None:
        self.num_workers = num_workers
        await self._trigger("worker_start", worker=self)

    async def stop(self) -> None:
        await self._trigger("worker_stop", worker=self)

    def serve(self, app: Any) -> ServedApp:
        """The app as its worker processes see it (shared tasks declared by now included)."""
        app._adopt_shared_tasks()
        def make_self(schema: TaskExecSchema, uuid: Any) -> Any:
            task = task_object(schema, None, app)
            task.ctx._update(task_uuid=uuid)
            return task

        runtime = ExecutorRuntime(make_self, self.task_middlewares_before, self.task_middlewares_after, app)
        return ServedApp(app.name, app._lookup, lambda: sorted(app.tasks), self.task_executor, self.plugins,
                         runtime, app.events, self, app.broker, app.config)
