"""``Task``: a task record as the API returns it.

A ``Task`` knows how to wait for itself only through a narrow *waiter* (two methods),
set by whoever made it; a ``Task`` built by hand uses the current app's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, Optional, Protocol, TypeVar, Union
from uuid import UUID

R = TypeVar("R")


class Waiter(Protocol):
    """Waits for a task to end; ``None`` when it did not within ``timeout``."""

    def wait(self, uuid: UUID, timeout: float) -> Optional[Task[Any]]: ...

    async def wait_async(self, uuid: UUID, timeout: float) -> Optional[Task[Any]]: ...


@dataclass
class Task(Generic[R]):
    status: str
    uuid: UUID
    priority: int
    task_name: str
    args: Union[tuple[Any, ...], list[Any]]
    kwargs: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    returning: Optional[R] = None
    traceback: Optional[str] = None
    retry: Optional[int] = None
    retry_child_uuid: Optional[Union[UUID, str]] = None
    retry_parent_uuid: Optional[Union[UUID, str]] = None
    attempts: int = 0
    """Deliveries to a worker so far (counted when dispatched)."""

    def wait_result(self, timeout: float = 100.0) -> Optional[Task[R]]:
        """Block until this task ends (or ``timeout`` passes: None)."""
        return self._waiter().wait(self.uuid, timeout)

    async def wait_result_async(self, timeout: float = 100.0) -> Optional[Task[R]]:
        return await self._waiter().wait_async(self.uuid, timeout)

    def _waiter(self) -> Waiter:
        waiter: Optional[Waiter] = self.__dict__.get("_qtasks_waiter")
        if waiter is None:
            from qtasks.current import current_app

            waiter = current_app().waiter
        return waiter


def with_waiter(task: Task[R], waiter: Waiter) -> Task[R]:
    task.__dict__["_qtasks_waiter"] = waiter
    return task


@lru_cache(maxsize=256)
def task_class(extra_fields: frozenset[str]) -> type[Task[Any]]:
    """A ``Task`` subclass that also carries ``extra_fields`` (e.g. ``cancel_reason``)."""
    if not extra_fields:
        return Task
    spec = [(name, Any, dataclasses.field(default=None)) for name in sorted(extra_fields)]
    return dataclasses.make_dataclass("Task", spec, bases=(Task,))
