"""``Worker``: what an app carries into each of its worker processes, and ``ServedApp``, the
narrow view of the app those processes run from.

The component (``app.worker``) holds the app's tasks, the executor class, the app-wide
middlewares and the worker's plugins; the built-in plugins (pydantic models, Depends,
State) are installed on every worker, where a user sees them and may remove or replace
one by name. ``serve(app)`` gives a worker process everything it needs and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from qtasks.executors import AsyncTaskExecutor
from qtasks.executors.base import ExecutorRuntime
from qtasks.plugins.base import BasePlugin
from qtasks.plugins.depends.plugin import AsyncDependsPlugin
from qtasks.plugins.pydantic import AsyncPydanticWrapperPlugin
from qtasks.plugins.states.plugin import AsyncStatePlugin
from qtasks.plugins.triggers import Plugins, add_plugin
from qtasks.tasks.registry import task_object
from qtasks.tasks.spec import TaskExecSchema


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
    config: Any


class Worker:
    def __init__(self, name: str = "QueueTasks", executor: Optional[type] = None) -> None:
        self.name = name
        self._tasks: dict[str, TaskExecSchema] = {}
        self.task_executor: type = executor or AsyncTaskExecutor
        self.task_middlewares_before: list[type] = []
        self.task_middlewares_after: list[type] = []
        self.plugins: Plugins = {}
        self.init_plugins()

    def init_plugins(self) -> None:
        """Install the built-in plugins (upstream installs the same four names on every worker)."""
        for plugin in (AsyncPydanticWrapperPlugin(), AsyncDependsPlugin(), AsyncStatePlugin()):
            self.add_plugin(plugin, list(plugin.handlers))

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[list[str]] = None) -> None:
        add_plugin(self.plugins, plugin, trigger_names)

    def serve(self, app: Any) -> ServedApp:
        """The app as its worker processes see it (shared tasks declared by now included)."""
        app._adopt_shared_tasks()
        def make_self(schema: TaskExecSchema, uuid: Any) -> Any:
            task = task_object(schema, None, app)
            task.ctx._update(task_uuid=uuid)
            return task

        runtime = ExecutorRuntime(make_self, self.task_middlewares_before, self.task_middlewares_after, app)
        return ServedApp(app.name, app._lookup, lambda: sorted(app.tasks), self.task_executor, self.plugins,
                         runtime, app.events, self, app.config)
