"""Task objects: what ``@app.task`` returns. ``SyncTask.add_task`` blocks, ``AsyncTask.add_task`` awaits.

Calling a task object does not run the function: it builds a deferred call
(``SyncTaskCls``/``AsyncTaskCls``) to submit later, alone or in a batch. Both are
generic over the function's parameters ``P`` and result ``R``, so a type checker sees
``add(1, 2)`` checked against ``add``'s signature and ``Task[R].returning`` typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Generic,
    Iterable,
    Iterator,
    Optional,
    ParamSpec,
    Sequence,
    TypeVar,
    overload,
)

from qtasks.batch.mapping import MapRun, calls_of, iterate, iterate_async, length_of
from qtasks.contexts import AsyncContext, BaseContext, SyncContext
from qtasks.current import current_app
from qtasks.progress import Progress
from qtasks.tasks.spec import TaskOptions

if TYPE_CHECKING:
    from qtasks.tasks.record import Task

P = ParamSpec("P")
R = TypeVar("R")

_OPTION_NAMES = frozenset(f.name for f in fields(TaskOptions))


class BaseTask(Generic[P, R]):
    """A task bound to an app (or to the app built last, when made without one).

    Its options (``priority``, ``echo``, ``retry``, ...) read as attributes, as upstream's did.
    """

    _context_class: type[BaseContext]

    def __init__(self, task_name: Optional[str] = None, priority: Optional[int] = None, *,
                 app: Any = None, **options: Any) -> None:
        self.task_name = task_name
        self.options = TaskOptions.from_kwargs({**options, "priority": priority})
        self._app = app
        self.ctx = self._context_class(task_name=task_name, generate_handler=self.options.generate_handler,
                                       app=app)

    def __getattr__(self, name: str) -> Any:
        if name in _OPTION_NAMES:
            return getattr(self.__dict__["options"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _target(self, kwargs: dict[str, Any]) -> tuple[Any, str, Optional[int], Optional[float]]:
        """(app, task name, priority, timeout) of an ``add_task`` call, taking its options out of ``kwargs``."""
        app = current_app(self._app)
        priority = kwargs.pop("priority", None)
        name = kwargs.pop("task_name", None) or self.task_name
        if not name:
            raise ValueError("Task name is not specified.")
        return app, name, self.priority if priority is None else priority, kwargs.pop("timeout", None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_name!r} priority={self.priority}>"

    def _map_run(self, iterable: Iterable[Any], star: bool, workers: tuple[int, int], app: Any,
                 options: dict[str, Any]) -> MapRun:
        name = self.task_name
        if not name:
            raise ValueError("Task name is not specified.")
        processes, slots = workers
        return MapRun(app, name, calls_of(iterable, star), priority=self.priority, total=length_of(iterable),
                      processes=processes, slots=slots, **options)


class SyncTask(BaseTask[P, R]):
    _context_class = SyncContext

    @overload
    def add_task(self, *args: P.args, **kwargs: P.kwargs) -> Task[R]: ...

    @overload
    def add_task(self, *args: Any, priority: Optional[int] = None, timeout: float,
                 task_name: Optional[str] = None, **kwargs: Any) -> Optional[Task[R]]: ...

    @overload
    def add_task(self, *args: Any, priority: Optional[int] = None, timeout: None = None,
                 task_name: Optional[str] = None, **kwargs: Any) -> Task[R]: ...

    def add_task(self, *args: Any, **kwargs: Any) -> Optional[Task[R]]:
        """Submit it; with ``timeout=``, wait for it to end (None if it did not in time);
        ``priority=`` and ``task_name=`` override the task's."""
        app, name, priority, timeout = self._target(kwargs)
        task: Optional[Task[R]] = app._add_task_call(name, args, kwargs, priority, timeout).result()
        return task

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> SyncTaskCls[R]:
        """A deferred call (``priority=``, ``timeout=``, ``task_name=`` keywords set its options)."""
        name, priority, timeout = _call_options(self, kwargs)
        call: SyncTaskCls[R] = SyncTaskCls(name, priority, timeout, args, kwargs)
        call.bind(self)
        return call

    def map(self, iterable: Iterable[Any], *, chunksize: Optional[int] = None, window: Optional[int] = None,
            timeout: Optional[float] = None, return_exceptions: bool = False,
            progress: Progress = False) -> list[R]:
        """Run the task once per item (one argument each), as ``multiprocessing.Pool.map``: the results
        in input order. See :mod:`qtasks.batch.mapping` for chunks, the window and errors."""
        return list(self.imap(iterable, chunksize=chunksize, window=window, timeout=timeout,
                              return_exceptions=return_exceptions, progress=progress))

    def starmap(self, iterable: Iterable[Sequence[Any]], **options: Any) -> list[R]:
        """As :meth:`map`, each item being the arguments of one call."""
        return list(iterate(self._start_map(iterable, True, options), ordered=True))

    def imap(self, iterable: Iterable[Any], **options: Any) -> Iterator[R]:
        """As :meth:`map`, yielding each result as soon as it and those before it are in."""
        return iterate(self._start_map(iterable, False, options), ordered=True)

    def imap_unordered(self, iterable: Iterable[Any], **options: Any) -> Iterator[R]:
        """As :meth:`imap`, in the order the results come."""
        return iterate(self._start_map(iterable, False, options), ordered=False)

    def _start_map(self, iterable: Iterable[Any], star: bool, options: dict[str, Any]) -> MapRun:
        app = current_app(self._app)
        return self._map_run(iterable, star, app._workers_call().result(), app, options)


class AsyncTask(BaseTask[P, R]):
    _context_class = AsyncContext

    @overload
    async def add_task(self, *args: P.args, **kwargs: P.kwargs) -> Task[R]: ...

    @overload
    async def add_task(self, *args: Any, priority: Optional[int] = None, timeout: float,
                       task_name: Optional[str] = None, **kwargs: Any) -> Optional[Task[R]]: ...

    @overload
    async def add_task(self, *args: Any, priority: Optional[int] = None, timeout: None = None,
                       task_name: Optional[str] = None, **kwargs: Any) -> Task[R]: ...

    async def add_task(self, *args: Any, **kwargs: Any) -> Optional[Task[R]]:
        """Submit it; with ``timeout=``, wait for it to end (None if it did not in time);
        ``priority=`` and ``task_name=`` override the task's."""
        app, name, priority, timeout = self._target(kwargs)
        task: Optional[Task[R]] = await app._add_task_call(name, args, kwargs, priority, timeout).wait_async()
        return task

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskCls[R]:
        """A deferred call (``priority=``, ``timeout=``, ``task_name=`` keywords set its options)."""
        name, priority, timeout = _call_options(self, kwargs)
        call: AsyncTaskCls[R] = AsyncTaskCls(name, priority, timeout, args, kwargs)
        call.bind(self)
        return call

    async def map(self, iterable: Iterable[Any], *, chunksize: Optional[int] = None, window: Optional[int] = None,
                  timeout: Optional[float] = None, return_exceptions: bool = False,
                  progress: Progress = False) -> list[R]:
        """Run the task once per item (one argument each), as ``multiprocessing.Pool.map``: the results
        in input order. See :mod:`qtasks.batch.mapping` for chunks, the window and errors."""
        return [r async for r in self.imap(iterable, chunksize=chunksize, window=window, timeout=timeout,
                                           return_exceptions=return_exceptions, progress=progress)]

    async def starmap(self, iterable: Iterable[Sequence[Any]], **options: Any) -> list[R]:
        """As :meth:`map`, each item being the arguments of one call."""
        return [r async for r in self._iterate(iterable, True, True, options)]

    def imap(self, iterable: Iterable[Any], **options: Any) -> AsyncIterator[R]:
        """As :meth:`map`, yielding each result as soon as it and those before it are in (``async for``)."""
        return self._iterate(iterable, False, True, options)

    def imap_unordered(self, iterable: Iterable[Any], **options: Any) -> AsyncIterator[R]:
        """As :meth:`imap`, in the order the results come."""
        return self._iterate(iterable, False, False, options)

    async def _iterate(self, iterable: Iterable[Any], star: bool, ordered: bool,
                       options: dict[str, Any]) -> AsyncIterator[R]:
        app = current_app(self._app)
        run = self._map_run(iterable, star, await app._workers_call().wait_async(), app, options)
        async for result in iterate_async(run, ordered):
            yield result


def _call_options(task: BaseTask[Any, Any], kwargs: dict[str, Any]) -> tuple[Optional[str], Optional[int],
                                                                             Optional[float]]:
    """Take upstream's reserved keywords out of a call (``priority or`` the task's, as upstream)."""
    name = kwargs.pop("task_name", None) or task.task_name
    priority = kwargs.pop("priority", None) or task.priority
    return name, priority, kwargs.pop("timeout", None)


# ---------------------------------------------------------------------------- deferred calls


@dataclass
class BaseTaskCls(Generic[R]):
    """A task call described, not yet submitted: ``add(1, 2)``."""

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
class SyncTaskCls(BaseTaskCls[R]):
    def add_task(self) -> Optional[Task[R]]:
        deco: Optional[SyncTask[Any, R]] = self._task_deco
        if deco is None:
            raise RuntimeError("SyncTask is not defined!")
        return deco.add_task(*self.args, task_name=self.task_name, priority=self.priority,
                             timeout=self.timeout, **self.kwargs)


@dataclass
class AsyncTaskCls(BaseTaskCls[R]):
    async def add_task(self) -> Optional[Task[R]]:
        deco: Optional[AsyncTask[Any, R]] = self._task_deco
        if deco is None:
            raise RuntimeError("AsyncTask is not defined!")
        return await deco.add_task(*self.args, task_name=self.task_name, priority=self.priority,
                                   timeout=self.timeout, **self.kwargs)
