"""What a registered task is: its options (defined once, here), its function, and one delivery of it.

``TaskOptions`` is the one list of what ``@app.task(...)``, ``@router.task(...)``,
``@shared_task(...)`` and the task objects accept; any other keyword is kept in
``extra`` (upstream's ``**kwargs``). ``TaskExecSchema`` is a registered task (upstream's
name): the options plus the function and what kind of function it is.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Literal, Optional, Union

Generating = Union[Literal["sync", "async"], Literal[False]]


@dataclass
class TaskOptions:
    priority: Optional[int] = None
    """Lower runs first; None: the app's ``config.task_default_priority`` (0 for routers and shared tasks)."""
    echo: bool = False
    """Pass a task object bound to the app as the first argument (``self``)."""
    max_time: Optional[float] = None
    """Seconds the task may run; past them it fails with ``TaskTimeLimitError``."""
    retry: Optional[int] = None
    """Extra runs after a failure."""
    retry_on_exc: Optional[list[type[BaseException]]] = None
    """Retry only for these exception classes (and subclasses); None: any."""
    decode: Optional[Callable[..., Any]] = None
    """Shapes the stored result (sync or async)."""
    tags: Optional[list[str]] = None
    description: Optional[str] = None
    generate_handler: Optional[Callable[..., Any]] = None
    """Applied to each value a generator task yields; its result is sent back into the generator."""
    executor: Optional[type] = None
    """A ``BaseTaskExecutor`` subclass that runs this task instead of the worker's."""
    middlewares_before: list[type] = field(default_factory=list)
    middlewares_after: list[type] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """Keywords that are not options (e.g. ``test=True`` for the testing plugin)."""

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> TaskOptions:
        """Options from decorator keywords: the known ones by name, the rest into ``extra``."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in kwargs.items() if k in known and k != "extra"}
        extra = {**(kwargs.get("extra") or {}), **{k: v for k, v in kwargs.items() if k not in known}}
        for name in ("middlewares_before", "middlewares_after"):
            if given.get(name) is None:
                given.pop(name, None)
            else:
                given[name] = list(given[name])
        return cls(**given, extra=extra)

    def options(self) -> TaskOptions:
        """These options alone (a copy; for a schema, without its function)."""
        return TaskOptions(**{f.name: getattr(self, f.name) for f in fields(TaskOptions)})


def check_options(task_name: str, options: TaskOptions) -> None:
    """Refuse option values that could only fail later, when the task runs."""
    retry_on_exc = options.retry_on_exc
    if retry_on_exc is not None and not all(isinstance(e, type) and issubclass(e, BaseException)
                                            for e in retry_on_exc):
        raise TypeError(f"retry_on_exc of task {task_name!r} must list exception classes, got {retry_on_exc!r}")


@dataclass(kw_only=True)
class TaskExecSchema(TaskOptions):
    """A registered task: its name, its function, the kind of function, and its options."""

    name: str
    func: Callable[..., Any]
    awaiting: bool = False
    generating: Generating = False

    @classmethod
    def build(cls, name: str, func: Callable[..., Any], options: TaskOptions) -> TaskExecSchema:
        check_options(name, options)
        return cls(
            name=name, func=func,
            awaiting=inspect.iscoroutinefunction(func),
            generating=("async" if inspect.isasyncgenfunction(func) else
                        "sync" if inspect.isgeneratorfunction(func) else False),
            **{f.name: getattr(options, f.name) for f in fields(TaskOptions)},
        )

    def add_middlewares_before(self, middlewares: list[type]) -> None:
        self.middlewares_before.extend(middlewares)

    def add_middlewares_after(self, middlewares: list[type]) -> None:
        self.middlewares_after.extend(middlewares)


@dataclass(order=True)
class TaskPrioritySchema:
    """One delivery of a task, as the executor and the task events see it."""

    priority: int
    uuid: Any = field(compare=False)
    name: str = field(compare=False)
    args: list[Any] = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    created_at: float = 0.0
    updated_at: float = 0.0
    attempt: int = field(default=1, compare=False)
    """Which delivery of the task this is (1 = first)."""
    retry: Optional[int] = field(default=None, compare=False)
    """Runs left in the task's retry chain, when it is a retry (upstream's record ``retry``)."""
