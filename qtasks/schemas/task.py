"""``Task``: a task record as the app returns it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Optional
from uuid import UUID

if TYPE_CHECKING:
    from qtasks.base.qtasks import BaseQueueTasks


@dataclass
class Task:
    status: str
    uuid: UUID
    priority: int
    task_name: str
    args: tuple[Any, ...] | list[Any]
    kwargs: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    returning: Any = None
    traceback: Optional[str] = None
    retry: Optional[int] = None
    retry_child_uuid: Optional[UUID | str] = None
    retry_parent_uuid: Optional[UUID | str] = None
    attempts: int = 0
    """Deliveries to a worker so far (counted when dispatched)."""

    def wait_result(self, timeout: float = 100.0) -> Task | None:
        """Block until this task ends (or ``timeout`` passes: None)."""
        return _app_of(self)._wait_call(self.uuid, timeout).result()

    async def wait_result_async(self, timeout: float = 100.0) -> Task | None:
        return await _app_of(self)._wait_call(self.uuid, timeout).wait_async()


def _app_of(task: Task) -> BaseQueueTasks:
    app = task.__dict__.get("_app")
    if app is None:
        from qtasks import _state

        app = _state.app_main
    if app is None:
        raise ImportError("Unable to get app!")
    return app


@lru_cache(maxsize=256)
def task_class(extra_fields: frozenset[str]) -> type[Task]:
    """A ``Task`` subclass that also carries ``extra_fields`` (e.g. ``cancel_reason``)."""
    if not extra_fields:
        return Task
    spec = [(name, Any, dataclasses.field(default=None)) for name in sorted(extra_fields)]
    return dataclasses.make_dataclass("Task", spec, bases=(Task,))
