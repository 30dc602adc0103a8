"""``TaskRegistry`` and ``shared_task``: tasks declared without an app.

They live in one process-wide registry; every app picks them up when it needs them
(on serving, and when a name is not otherwise known), so tasks declared after the app
was built register too.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional, Union

from qtasks.registries.registrar import TaskRegistrar
from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.schemas.task_exec import TaskExecSchema


class TaskRegistry(TaskRegistrar):
    _tasks: ClassVar[dict[str, TaskExecSchema]] = {}

    def __init__(self, task_class: Optional[type[BaseTask]] = None) -> None:
        self.tasks = TaskRegistry._tasks
        self._task_class = task_class  # type: ignore[misc]

    @classmethod
    def get_task(cls, name: str) -> Optional[TaskExecSchema]:
        return cls._tasks.get(name)

    @classmethod
    def all_tasks(cls) -> dict[str, TaskExecSchema]:
        return dict(cls._tasks)


def shared_task(name: Union[str, Callable[..., Any], None] = None, priority: Optional[int] = None,
                echo: bool = False, retry: Optional[int] = None,
                retry_on_exc: Optional[list[type[BaseException]]] = None,
                decode: Optional[Callable[..., Any]] = None, tags: Optional[list[str]] = None,
                description: Optional[str] = None, generate_handler: Optional[Callable[..., Any]] = None,
                executor: Optional[type] = None, middlewares_before: Optional[list[type]] = None,
                middlewares_after: Optional[list[type]] = None, awaiting: bool = False,
                max_time: Optional[float] = None, **kwargs: Any) -> Any:
    """A task any app can run: ``@shared_task`` or ``@shared_task(name=..., ...)``.

    The task object is an ``AsyncTask`` for ``async`` functions (or ``awaiting=True``), a
    ``SyncTask`` otherwise; it uses the app built last (``qtasks._state.app_main``).
    """
    registry = TaskRegistry(AsyncTask if awaiting else None)
    options = dict(priority=priority, echo=echo, max_time=max_time, retry=retry,
                   retry_on_exc=retry_on_exc, decode=decode, tags=tags, description=description,
                   generate_handler=generate_handler, executor=executor,
                   middlewares_before=middlewares_before, middlewares_after=middlewares_after, **kwargs)
    if callable(name):
        return registry.task(**options)(name)
    return registry.task(name, **options)


__all__ = ["AsyncTask", "SyncTask", "TaskRegistry", "shared_task"]
