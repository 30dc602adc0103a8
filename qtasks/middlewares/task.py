"""``TaskMiddleware``: a middleware around one task's execution (see :mod:`qtasks.middlewares`)."""

from __future__ import annotations

from typing import Any

from qtasks.middlewares.base import BaseMiddleware


class TaskMiddleware(BaseMiddleware):
    def __init__(self, task_executor: Any) -> None:
        super().__init__(name="TaskMiddleware")
        self.task_executor = task_executor


__all__ = ["TaskMiddleware"]
