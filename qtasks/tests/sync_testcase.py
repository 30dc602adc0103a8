"""``SyncTestCase``: the test case of a sync app (see :mod:`qtasks.tests.base`)."""

from __future__ import annotations

from typing import Any, Optional, Union
from uuid import UUID

import anyio

from qtasks.tasks.record import Task
from qtasks.tests.base import BaseTestCase
from qtasks.tests.direct import run_directly


class SyncTestCase(BaseTestCase):
    __test__ = False

    def add_task(self, task_name: str, *args: Any, priority: Optional[int] = None, timeout: Optional[float] = None,
                 **kwargs: Any) -> Optional[Task[Any]]:
        route = self._route()
        if route == "broker":
            task: Optional[Task[Any]] = self.app.add_task(task_name, *args, priority=priority, timeout=timeout,
                                                          **kwargs)
            return task
        if route == "direct":
            return anyio.run(run_directly, self.app, task_name, args, kwargs, priority)
        self._nowhere()
        return None

    def get(self, uuid: Union[UUID, str]) -> Optional[Task[Any]]:
        if self._route() != "broker":
            self._no_broker()
            return None
        found: Optional[Task[Any]] = self.app.get(uuid)
        return found

    def start(self, **kwargs: Any) -> None:
        """Serve the app until it is stopped (``app.run_forever(**kwargs)``)."""
        self.app.run_forever(**kwargs)

    def stop(self) -> None:
        self._stop()


__all__ = ["SyncTestCase"]
