"""``SyncResult`` / ``AsyncResult``: wait for a task by uuid (spec §3.5).

The broker pushes the end of a task to whoever waits, so a result is seen as soon as it
exists, never up to a poll interval late. As upstream: a missing task gives None at once,
a retried task gives the last task of its retry chain, and a timeout gives None (logged).
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Union
from uuid import UUID

from qtasks.current import current_app
from qtasks.tasks.record import Task

log = logging.getLogger("qtasks.client")


class BaseResult:
    def __init__(self, uuid: Optional[Union[UUID, str]] = None, app: Any = None, log: Any = None) -> None:
        self.uuid = uuid
        self.app = current_app(app)
        self.log = log

    def _target(self) -> Union[UUID, str]:
        if self.uuid is None:
            raise ValueError(f"{type(self).__name__} needs the uuid of the task to wait for: "
                             f"{type(self).__name__}(uuid=task.uuid)")
        return self.uuid

    def _waited(self, task: Optional[Task[Any]], timeout: float) -> Optional[Task[Any]]:
        if task is None:
            log.warning("task %s did not finish within %g s (or is unknown)", self.uuid, timeout)
        return task


__all__ = ["BaseResult"]
