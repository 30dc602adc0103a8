"""``AsyncTestPlugin`` / ``SyncTestPlugin``: mark the records of test tasks (opt-in).

A task registered with ``test=<value>`` (``@app.task(test=True)``) gets the field
``is_testing=str(value)`` on its record, through ``worker_remove_finished_task``::

    app.add_plugin(AsyncTestPlugin(), component="worker")
"""

from __future__ import annotations

from typing import Any, Optional

from qtasks.plugins.base import BasePlugin
from qtasks.utils.builds import _build_task


class AsyncTestPlugin(BasePlugin):
    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.handlers = {"worker_execute_before": self.mark, "worker_remove_finished_task": self.mark}

    def mark(self, task_func: Any, model: Any = None, **_: Any) -> Optional[dict[str, Any]]:
        if model is None or "test" not in task_func.extra:
            return None
        return {"model": _build_task(model, is_testing=str(task_func.extra["test"]))}


class SyncTestPlugin(AsyncTestPlugin):
    """The same plugin under the name sync apps use upstream."""


__all__ = ["AsyncTestPlugin", "SyncTestPlugin"]
