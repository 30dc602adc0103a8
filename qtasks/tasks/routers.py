"""Routers: register tasks in their own module, then ``app.include_router(router)``.

``@router.task`` works bare and called. The router's task objects are bound to the app
that includes them, and the plugins added to the router (``router.add_plugin``) join the app's.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from qtasks.plugins.base import BasePlugin
from qtasks.plugins.triggers import Plugins, add_plugin
from qtasks.tasks.objects import BaseTask
from qtasks.tasks.registry import AsyncRegistrar, SyncRegistrar, TaskRegistrar
from qtasks.tasks.spec import TaskExecSchema, TaskOptions


class BaseRouter(TaskRegistrar):
    def __init__(self) -> None:
        self.tasks: dict[str, TaskExecSchema] = {}
        self.task_objects: list[BaseTask[Any, Any]] = []
        self.plugins: Plugins = {}
        """App plugins that come with the router: the app that includes it registers them too."""

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None) -> None:
        add_plugin(self.plugins, plugin, trigger_names)

    def _register(self, func: Any, name: Any, options: TaskOptions) -> BaseTask[Any, Any]:
        task = super()._register(func, name, options)
        self.task_objects.append(task)
        return task


class SyncRouter(SyncRegistrar, BaseRouter):
    pass


class AsyncRouter(AsyncRegistrar, BaseRouter):
    pass
