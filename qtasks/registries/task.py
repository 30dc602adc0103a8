"""Task objects: what ``@app.task`` returns. ``SyncTask.add_task`` blocks, ``AsyncTask.add_task`` awaits.

Calling a task object does not run the function: it builds a deferred call
(``SyncTaskCls``/``AsyncTaskCls``) to submit later, alone or in a batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from qtasks.contexts import AsyncContext, BaseContext, SyncContext
from qtasks.schemas.task_cls import AsyncTaskCls, SyncTaskCls

if TYPE_CHECKING:
    from qtasks.schemas.task import Task


class BaseTask:
    _context_class: type[BaseContext]

    def __init__(
        self,
        task_name: Optional[str] = None,
        priority: Optional[int] = None,
        echo: bool = False,
        max_time: Optional[float] = None,
        retry: Optional[int] = None,
        retry_on_exc: Optional[list[type[BaseException]]] = None,
        decode: Optional[Callable[..., Any]] = None,
        tags: Optional[list[str]] = None,
        description: Optional[str] = None,
        generate_handler: Optional[Callable[..., Any]] = None,
        executor: Optional[type] = None,
        middlewares_before: Optional[list[type]] = None,
        middlewares_after: Optional[list[type]] = None,
        extra: Optional[dict[str, Any]] = None,
        app: Any = None,
    ) -> None:
        self.task_name = task_name
        self.priority = priority
        self.echo = echo
        self.max_time = max_time
        self.retry = retry
        self.retry_on_exc = retry_on_exc
        self.decode = decode
        self.tags = tags
        self.description = description
        self.generate_handler = generate_handler
        self.executor = executor
        self.middlewares_before = middlewares_before or []
        self.middlewares_after = middlewares_after or []
        self.extra = extra or {}
        self._app = app
        self.ctx = self._context_class(task_name=task_name, generate_handler=generate_handler, app=app)

    def _target(self, priority: Optional[int], task_name: Optional[str]) -> tuple[Any, str, Optional[int]]:
        app = self._app
        if app is None:
            from qtasks import _state

            app = _state.app_main
        if app is None:
            raise ImportError("Unable to get app!")
        name = task_name or self.task_name
        if not name:
            raise ValueError("Task name is not specified.")
        return app, name, self.priority if priority is None else priority

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_name!r} priority={self.priority}>"


class SyncTask(BaseTask):
    _context_class = SyncContext

    def add_task(self, *args: Any, priority: Optional[int] = None, timeout: Optional[float] = None,
                 task_name: Optional[str] = None, **kwargs: Any) -> Optional[Task]:
        app, name, priority = self._target(priority, task_name)
        return app._add_task_call(name, args, kwargs, priority, timeout).result()

    def __call__(self, *args: Any, priority: Optional[int] = None, timeout: Optional[float] = None,
                 task_name: Optional[str] = None, **kwargs: Any) -> SyncTaskCls:
        return SyncTaskCls(task_name or self.task_name, priority or self.priority, timeout,
                           args, kwargs).bind(self)


class AsyncTask(BaseTask):
    _context_class = AsyncContext

    async def add_task(self, *args: Any, priority: Optional[int] = None, timeout: Optional[float] = None,
                       task_name: Optional[str] = None, **kwargs: Any) -> Optional[Task]:
        app, name, priority = self._target(priority, task_name)
        return await app._add_task_call(name, args, kwargs, priority, timeout).wait_async()

    def __call__(self, *args: Any, priority: Optional[int] = None, timeout: Optional[float] = None,
                 task_name: Optional[str] = None, **kwargs: Any) -> AsyncTaskCls:
        return AsyncTaskCls(task_name or self.task_name, priority or self.priority, timeout,
                            args, kwargs).bind(self)
