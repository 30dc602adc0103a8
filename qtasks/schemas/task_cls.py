"""Deferred task calls: ``my_task(1, 2)`` builds one; ``add_task()`` submits it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from qtasks.registries.task import AsyncTask, SyncTask
    from qtasks.schemas.task import Task


@dataclass
class BaseTaskCls:
    task_name: Optional[str] = None
    priority: Optional[int] = None
    timeout: Optional[float] = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    _task_deco: Any = field(default=None, repr=False, compare=False)

    def bind(self, deco: Any) -> Any:
        self._task_deco = deco
        return self


@dataclass
class SyncTaskCls(BaseTaskCls):
    def add_task(self) -> Optional[Task]:
        deco: SyncTask | None = self._task_deco
        if deco is None:
            raise RuntimeError("SyncTask is not defined!")
        return deco.add_task(*self.args, task_name=self.task_name, priority=self.priority,
                             timeout=self.timeout, **self.kwargs)


@dataclass
class AsyncTaskCls(BaseTaskCls):
    async def add_task(self) -> Optional[Task]:
        deco: AsyncTask | None = self._task_deco
        if deco is None:
            raise RuntimeError("AsyncTask is not defined!")
        return await deco.add_task(*self.args, task_name=self.task_name, priority=self.priority,
                                   timeout=self.timeout, **self.kwargs)
