"""Registering tasks: the ``.task(...)`` decorator of apps and routers, and ``shared_task``.

``@x.task``, ``@x.task()``, ``@x.task("name")`` and ``@x.task(name=..., priority=..., **extra)``
all go through :meth:`TaskRegistrar.task`; its keywords are the fields of
:class:`~qtasks.tasks.spec.TaskOptions`. Shared tasks live in one process-wide registry
that every app picks up when it needs them (on serving, and when a name is not otherwise
known), so tasks declared after the app was built register too.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from typing import (
    Any,
    AsyncGenerator,
    Callable,
    ClassVar,
    Coroutine,
    Generator,
    Optional,
    ParamSpec,
    Protocol,
    TypeVar,
    Union,
    overload,
)

from qtasks.tasks.objects import AsyncTask, BaseTask, SyncTask
from qtasks.tasks.spec import TaskExecSchema, TaskOptions

P = ParamSpec("P")
R = TypeVar("R")


def options_signature(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``func(self, name=None, **options)`` the signature the options really are (for help())."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    for f in fields(TaskOptions):
        if f.name == "extra":
            continue
        default = f.default if f.default is not MISSING else None
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=f.type))
    params.append(inspect.Parameter("extra", inspect.Parameter.VAR_KEYWORD))
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return func


class TaskRegistrar:
    _task_class: ClassVar[Optional[type[BaseTask[Any, Any]]]] = None
    """The task object class; None: by the function (AsyncTask for async ones)."""
    tasks: dict[str, TaskExecSchema]

    @options_signature
    def task(self, name: Union[str, Callable[..., Any], None] = None, **options: Any) -> Any:
        """Register a task: ``@x.task``, ``@x.task()``, ``@x.task("name")``, ``@x.task(name=..., ...)``."""
        parsed = TaskOptions.from_kwargs(options)
        if callable(name):
            return self._register(name, None, parsed)
        return lambda func: self._register(func, name, parsed)

    def _default_priority(self) -> int:
        return 0

    def _task_app(self) -> Any:
        """The app task objects are bound to (None: resolved when used)."""
        return None

    def _register(self, func: Callable[..., Any], name: Optional[str], options: TaskOptions) -> BaseTask[Any, Any]:
        task_name = name or func.__name__
        if task_name in self.tasks:
            raise ValueError(f"Task with name {task_name} is already registered!")
        if options.priority is None:
            options.priority = self._default_priority()
        schema = TaskExecSchema.build(task_name, func, options)
        self.tasks[task_name] = schema
        return task_object(schema, self._task_class, self._task_app())


def task_object(schema: TaskExecSchema, kind: Optional[type[BaseTask[Any, Any]]], app: Any,
                **changes: Any) -> BaseTask[Any, Any]:
    """The task object for ``schema`` (``kind`` None: chosen by the function), bound to ``app``."""
    if kind is None:
        kind = AsyncTask if schema.awaiting or schema.generating == "async" else SyncTask
    options = schema.options()
    for key, value in changes.items():
        setattr(options, key, value)
    return kind(schema.name, app=app, **{**vars(options), "priority": options.priority})


# Typing: what the decorators return, by the function they get. A coroutine function's result is
# what it returns when awaited; a generator task's result is its return value or the list of
# handled values (Any); in a sync app every task object is a SyncTask, in an async app an AsyncTask.


class SyncTaskDecorator(Protocol):
    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]], /) -> SyncTask[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, Union[Generator[Any, Any, Any], AsyncGenerator[Any, Any]]],
                 /) -> SyncTask[P, Any]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> SyncTask[P, R]: ...


class AsyncTaskDecorator(Protocol):
    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, Union[Generator[Any, Any, Any], AsyncGenerator[Any, Any]]],
                 /) -> AsyncTask[P, Any]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> AsyncTask[P, R]: ...


class SyncRegistrar(TaskRegistrar):
    """Registers tasks as ``SyncTask`` objects (the sync app, ``SyncRouter``)."""

    _task_class = SyncTask

    @overload
    def task(self, name: Callable[P, Coroutine[Any, Any, R]], /) -> SyncTask[P, R]: ...

    @overload
    def task(self, name: Callable[P, Union[Generator[Any, Any, Any], AsyncGenerator[Any, Any]]],
             /) -> SyncTask[P, Any]: ...

    @overload
    def task(self, name: Callable[P, R], /) -> SyncTask[P, R]: ...

    @overload
    def task(self, name: Optional[str] = None, **options: Any) -> SyncTaskDecorator: ...

    @options_signature
    def task(self, name: Union[str, Callable[..., Any], None] = None, **options: Any) -> Any:
        """Register a task: ``@x.task``, ``@x.task()``, ``@x.task("name")``, ``@x.task(name=..., ...)``."""
        return TaskRegistrar.task(self, name, **options)


class AsyncRegistrar(TaskRegistrar):
    """Registers tasks as ``AsyncTask`` objects (the async app, ``AsyncRouter``)."""

    _task_class = AsyncTask

    @overload
    def task(self, name: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def task(self, name: Callable[P, Union[Generator[Any, Any, Any], AsyncGenerator[Any, Any]]],
             /) -> AsyncTask[P, Any]: ...

    @overload
    def task(self, name: Callable[P, R], /) -> AsyncTask[P, R]: ...

    @overload
    def task(self, name: Optional[str] = None, **options: Any) -> AsyncTaskDecorator: ...

    @options_signature
    def task(self, name: Union[str, Callable[..., Any], None] = None, **options: Any) -> Any:
        """Register a task: ``@x.task``, ``@x.task()``, ``@x.task("name")``, ``@x.task(name=..., ...)``."""
        return TaskRegistrar.task(self, name, **options)


class TaskRegistry(TaskRegistrar):
    _tasks: ClassVar[dict[str, TaskExecSchema]] = {}

    def __init__(self, task_class: Optional[type[BaseTask[Any, Any]]] = None) -> None:
        self.tasks = TaskRegistry._tasks
        self._task_class = task_class  # type: ignore[misc]

    @classmethod
    def get_task(cls, name: str) -> Optional[TaskExecSchema]:
        return cls._tasks.get(name)

    @classmethod
    def all_tasks(cls) -> dict[str, TaskExecSchema]:
        return dict(cls._tasks)


class SharedTaskDecorator(Protocol):
    # a coroutine function also matches the second form: the first match (AsyncTask) is meant
    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, func: Callable[P, R], /) -> SyncTask[P, R]: ...


@overload
def shared_task(name: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...  # type: ignore[overload-overlap]


@overload
def shared_task(name: Callable[P, R], /) -> SyncTask[P, R]: ...


@overload
def shared_task(name: Optional[str] = None, *, awaiting: bool = False, **options: Any) -> SharedTaskDecorator: ...


def shared_task(name: Union[str, Callable[..., Any], None] = None, *, awaiting: bool = False,
                **options: Any) -> Any:
    """A task any app can run: ``@shared_task`` or ``@shared_task(name=..., ...)``.

    The task object is an ``AsyncTask`` for ``async`` functions (or ``awaiting=True``), a
    ``SyncTask`` otherwise; it uses the app current when it is called.
    """
    registry = TaskRegistry(AsyncTask if awaiting else None)
    if callable(name):
        return registry.task(**options)(name)
    return registry.task(name, **options)
