"""Routers: register tasks in their own module, then ``app.include_router(router)``.

``@router.task`` works bare and called. The router's task objects are bound to the app
that includes them.
"""

from __future__ import annotations

from typing import Any

from qtasks.tasks.objects import BaseTask
from qtasks.tasks.registry import AsyncRegistrar, SyncRegistrar, TaskRegistrar
from qtasks.tasks.spec import TaskExecSchema, TaskOptions


class BaseRouter(TaskRegistrar):
    def __init__(self) -> None:
        self.tasks: dict[str, TaskExecSchema] = {}
        self.task_objects: list[BaseTask[Any, Any]] = []

    def _register(self, func: Any, name: Any, options: TaskOptions) -> BaseTask[Any, Any]:
        task = super()._register(func, name, options)
        self.task_objects.append(task)
        return task


class SyncRouter(SyncRegistrar, BaseRouter):
    pass


class AsyncRouter(AsyncRegistrar, BaseRouter):
    pass
