"""Routers: register tasks in their own module, then ``app.include_router(router)``.

``@router.task`` works bare and called. The router's task objects are bound to the app
that includes them.
"""

from __future__ import annotations

from typing import Any

from qtasks.registries.registrar import TaskRegistrar
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.schemas.task_exec import TaskExecSchema


class BaseRouter(TaskRegistrar):
    def __init__(self) -> None:
        self.tasks: dict[str, TaskExecSchema] = {}
        self.plugins: dict[str, list[Any]] = {}
        self.task_objects: list[BaseTask] = []

    def _register(self, func: Any, name: Any, options: dict[str, Any]) -> BaseTask:
        task = super()._register(func, name, options)
        self.task_objects.append(task)
        return task


class SyncRouter(BaseRouter):
    _task_class = SyncTask


class AsyncRouter(BaseRouter):
    _task_class = AsyncTask


__all__ = ["AsyncRouter", "BaseRouter", "SyncRouter"]
