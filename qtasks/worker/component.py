"""``Worker``: what an app carries into each of its worker processes — its tasks and how to run them."""

from __future__ import annotations

from typing import Any

from qtasks.executors import AsyncTaskExecutor
from qtasks.executors.dependencies import DependencyScopes
from qtasks.schemas.task_exec import TaskExecSchema


class Worker:
    def __init__(self, name: str = "QueueTasks", executor: type | None = None) -> None:
        self.name = name
        self._tasks: dict[str, TaskExecSchema] = {}
        self.task_executor: type = executor or AsyncTaskExecutor
        self.task_middlewares_before: list[type] = []
        self.task_middlewares_after: list[type] = []
        self.plugins: dict[str, list[Any]] = {}
        self.dependencies = DependencyScopes()
        """Values of the worker/broker/storage/global_config Depends scopes, per worker process."""
