"""``SyncResult``: block until a task ends (see :mod:`qtasks.results.base`)."""

from __future__ import annotations

from typing import Any, Optional

from qtasks.results.base import BaseResult
from qtasks.tasks.record import Task


class SyncResult(BaseResult):
    def result(self, timeout: float = 100.0) -> Optional[Task[Any]]:
        return self._waited(self.app._wait_call(self._target(), timeout).result(), timeout)


__all__ = ["SyncResult"]
