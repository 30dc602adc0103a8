"""``TaskRegistrar``: the ``.task(...)`` decorator, shared by apps, routers and ``shared_task``."""

from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Optional, Union

from qtasks.registries.task import AsyncTask, BaseTask, SyncTask
from qtasks.schemas.task_exec import TaskExecSchema


class TaskRegistrar:
    _task_class: ClassVar[Optional[type[BaseTask]]] = None
    """The task object class; None: by the function (AsyncTask for async ones)."""
    tasks: dict[str, TaskExecSchema]

    def task(
        self,
        name: Union[str, Callable[..., Any], None] = None,
        *,
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
        **kwargs: Any,
    ) -> Any:
        """Register a task: ``@x.task``, ``@x.task()``, ``@x.task("name")``, ``@x.task(name=..., ...)``."""
        options = dict(priority=priority, echo=echo, max_time=max_time, retry=retry,
                       retry_on_exc=retry_on_exc, decode=decode, tags=tags,
                       description=description, generate_handler=generate_handler,
                       executor=executor, middlewares_before=middlewares_before,
                       middlewares_after=middlewares_after, extra=kwargs)
        if callable(name):
            return self._register(name, None, options)
        return lambda func: self._register(func, name, options)

    def _default_priority(self) -> int:
        return 0

    def _task_app(self) -> Any:
        """The app task objects are bound to (None: resolved when used)."""
        return None

    def _register(self, func: Callable[..., Any], name: Optional[str], options: dict[str, Any]) -> BaseTask:
        task_name = name or func.__name__
        if task_name in self.tasks:
            raise ValueError(f"Task with name {task_name} is already registered!")
        retry_on_exc = options["retry_on_exc"]
        if retry_on_exc is not None and not all(isinstance(e, type) and issubclass(e, BaseException)
                                                for e in retry_on_exc):
            raise TypeError(f"retry_on_exc of task {task_name!r} must list exception classes, got {retry_on_exc!r}")
        priority = options["priority"]
        schema = TaskExecSchema(
            priority=self._default_priority() if priority is None else priority,
            name=task_name, func=func,
            awaiting=inspect.iscoroutinefunction(func),
            generating=("async" if inspect.isasyncgenfunction(func) else
                        "sync" if inspect.isgeneratorfunction(func) else False),
            echo=options["echo"], max_time=options["max_time"], retry=options["retry"],
            retry_on_exc=retry_on_exc, decode=options["decode"], tags=options["tags"],
            description=options["description"], generate_handler=options["generate_handler"],
            executor=options["executor"],
            middlewares_before=list(options["middlewares_before"] or []),
            middlewares_after=list(options["middlewares_after"] or []),
            extra=options["extra"],
        )
        self.tasks[task_name] = schema
        return task_object(schema, self._task_class, self._task_app())


def task_object(schema: TaskExecSchema, kind: Optional[type[BaseTask]], app: Any) -> BaseTask:
    """The object a decorator returns for ``schema`` (``kind`` None: chosen by the function)."""
    if kind is None:
        kind = AsyncTask if schema.awaiting or schema.generating == "async" else SyncTask
    return kind(
        task_name=schema.name, priority=schema.priority, echo=schema.echo, max_time=schema.max_time,
        retry=schema.retry, retry_on_exc=schema.retry_on_exc, decode=schema.decode,
        tags=schema.tags, description=schema.description,
        generate_handler=schema.generate_handler, executor=schema.executor,
        middlewares_before=schema.middlewares_before,
        middlewares_after=schema.middlewares_after, extra=schema.extra, app=app,
    )
