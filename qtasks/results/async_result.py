"""``AsyncResult``: await a task's end (see :mod:`qtasks.results.base`)."""

from __future__ import annotations

from typing import Any, Optional

from qtasks.results.base import BaseResult
from qtasks.tasks.record import Task


class AsyncResult(BaseResult):
    async def result(self, timeout: float = 100.0) -> Optional[Task[Any]]:
        return self._waited(await self.app._wait_call(self._target(), timeout).wait_async(), timeout)


__all__ = ["AsyncResult"]
