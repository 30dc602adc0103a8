"""``OnEvents``: the decorators that register event handlers, one per event."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from qtasks.events.handler import InitsExecSchema

Decorator = Callable[[Callable[..., Any]], InitsExecSchema]

EVENTS = ("starting", "stopping", "worker_running", "worker_stopping", "task_running",
          "task_success", "task_error", "task_cancel", "task_stopping")


class OnEvents:
    """``@app.events.on.task_success()``: handlers run in registration order.

    Where each fires, with which keyword arguments:

    - ``starting``/``stopping(starter, worker, broker)``: the serving process (supervisor)
    - ``worker_running``/``worker_stopping(worker, number)``: each worker process
    - ``task_running(worker, task_func, task_broker)``; ``task_success``/``task_error``/
      ``task_cancel``/``task_stopping(worker, task_func, task_broker, model)``: the worker
      process running the task (``model`` is its outcome)
    """

    def __init__(self) -> None:
        self.handlers: dict[str, list[InitsExecSchema]] = {name: [] for name in EVENTS}

    def _register(self, event: str) -> Decorator:
        def decorator(func: Callable[..., Any]) -> InitsExecSchema:
            handler = InitsExecSchema(event, func, inspect.iscoroutinefunction(func))
            self.handlers[event].append(handler)
            return handler

        return decorator

    def starting(self) -> Decorator:
        return self._register("starting")

    def stopping(self) -> Decorator:
        return self._register("stopping")

    def worker_running(self) -> Decorator:
        return self._register("worker_running")

    def worker_stopping(self) -> Decorator:
        return self._register("worker_stopping")

    def task_running(self) -> Decorator:
        return self._register("task_running")

    def task_success(self) -> Decorator:
        return self._register("task_success")

    def task_error(self) -> Decorator:
        return self._register("task_error")

    def task_cancel(self) -> Decorator:
        return self._register("task_cancel")

    def task_stopping(self) -> Decorator:
        return self._register("task_stopping")
