"""``AsyncRetryPlugin`` / ``SyncRetryPlugin``: whether a failed task runs again (spec §3.6).

Installed on every worker, on ``worker_task_error_retry``. ``raise Retry(delay=...)`` always
asks for another run; any other exception does when the task has ``retry=N`` and
``retry_on_exc`` is unset or lists a class the exception is an instance of. The runs left
come from the task's retry chain (the delivery's ``retry``), else from the task's
``retry=`` (3 for a ``Retry`` from a task without it). The answer is ``{"retry": runs left
before this failure, "delay": seconds}``: the worker reports a retry when runs are left (the
broker then makes the next task of the chain, held ``delay`` seconds), else an error.
"""

from __future__ import annotations

from typing import Any, Optional

from qtasks.exc import Retry
from qtasks.plugins.base import BasePlugin

DEFAULT_RETRY_BUDGET = 3
"""Retries a task without ``retry=`` gets when it raises ``Retry``."""


class AsyncRetryPlugin(BasePlugin):
    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.handlers = {"worker_task_error_retry": self.plan}

    def leaves_alone(self, func: Any) -> bool:
        """It acts on failures only, and a failure takes the full path (``qtasks.worker.direct``)."""
        return True

    def plan(self, task_func: Any, task_broker: Any, exc: Optional[BaseException] = None,
             **_: Any) -> Optional[dict[str, Any]]:
        if exc is None:
            return None
        if isinstance(exc, Retry):
            budget = task_func.retry if task_func.retry is not None else DEFAULT_RETRY_BUDGET
            delay = exc.delay
        elif task_func.retry and (task_func.retry_on_exc is None or isinstance(exc, tuple(task_func.retry_on_exc))):
            budget, delay = task_func.retry, 0.0
        else:
            return None
        remaining = task_broker.retry
        if isinstance(remaining, bool) or not isinstance(remaining, int):
            remaining = budget
        return {"retry": remaining, "delay": float(delay)}


class SyncRetryPlugin(AsyncRetryPlugin):
    """The same plugin under the name sync apps use upstream."""
