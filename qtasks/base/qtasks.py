"""The app core shared by both faces (``qtasks.QueueTasks`` and ``qtasks.asyncio.QueueTasks``).

Everything that is not "block or await" lives here: registration, building
envelopes, turning replies into ``Task`` objects, serving. Each public method of
a face is one line: build a :class:`~qtasks.client.calls.PendingCall` here, then
``.result()`` it (sync) or ``await .wait_async()`` it (async).
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import time
import uuid as uuid_module
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterable, Iterator, Optional, Sequence, Union
from uuid import UUID

import multiprocess

from qtasks import _state
from qtasks.brokers import BaseBroker, ZmqBroker
from qtasks.client.calls import PendingCall
from qtasks.client.convert import new_task, task_from_snapshot
from qtasks.configs import QueueConfig
from qtasks.logs import Logger
from qtasks.protocol import TaskEnvelope, TaskSnapshot, pack_arguments
from qtasks.registries.task import BaseTask
from qtasks.schemas.task import Task
from qtasks.schemas.task_cls import BaseTaskCls
from qtasks.schemas.task_exec import TaskExecSchema
from qtasks.urls import check_url
from qtasks.version import __version__
from qtasks.worker.component import Worker

TaskCall = Union[BaseTaskCls, tuple[str, Sequence[Any], dict[str, Any]]]


class BaseQueueTasks:
    _method: ClassVar[str]
    _task_class: ClassVar[type[BaseTask]]

    def __init__(
        self,
        name: str = "QueueTasks",
        broker_url: Optional[str] = None,
        broker: Optional[BaseBroker] = None,
        worker: Optional[Worker] = None,
        log: Optional[Logger] = None,
        config: Optional[QueueConfig] = None,
        events: Any = None,
    ) -> None:
        self.name = name
        self.version = __version__
        self.config = config if config is not None else QueueConfig()
        self.log = (log.with_subname("QueueTasks") if log is not None else
                    Logger(name, "QueueTasks", self.config.logs_default_level_server,
                           self.config.logs_format))
        self.broker = broker if broker is not None else ZmqBroker(
            broker_url, connect_timeout=self.config.broker_connect_timeout)
        self.worker = worker if worker is not None else Worker(name)
        self.events = events
        self.starter: Any = None
        self.routers: list[Any] = []
        self.plugins: dict[str, list[Any]] = {}
        self.tasks: dict[str, TaskExecSchema] = self.worker._tasks
        _state.app_main = self
        _state.log_main = self.log

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.name!r} at {self.broker.url}>"

    # ------------------------------------------------------------------ registration

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
        """Register a task: ``@app.task``, ``@app.task()``, ``@app.task("name")``, ``@app.task(name=..., ...)``."""
        options = dict(priority=priority, echo=echo, max_time=max_time, retry=retry,
                       retry_on_exc=retry_on_exc, decode=decode, tags=tags,
                       description=description, generate_handler=generate_handler,
                       executor=executor, middlewares_before=middlewares_before,
                       middlewares_after=middlewares_after, extra=kwargs)
        if callable(name):
            return self._register(name, None, options)
        return lambda func: self._register(func, name, options)

    def _register(self, func: Callable[..., Any], name: Optional[str], options: dict[str, Any]) -> BaseTask:
        task_name = name or func.__name__
        if task_name in self.tasks:
            raise ValueError(f"Task with name {task_name} is already registered!")
        priority = options["priority"]
        if priority is None:
            priority = self.config.task_default_priority
        generating: Any = ("async" if inspect.isasyncgenfunction(func) else
                           "sync" if inspect.isgeneratorfunction(func) else False)
        schema = TaskExecSchema(
            priority=priority, name=task_name, func=func,
            awaiting=inspect.iscoroutinefunction(func), generating=generating,
            echo=options["echo"], max_time=options["max_time"], retry=options["retry"],
            retry_on_exc=options["retry_on_exc"], decode=options["decode"], tags=options["tags"],
            description=options["description"], generate_handler=options["generate_handler"],
            executor=options["executor"],
            middlewares_before=list(options["middlewares_before"] or []),
            middlewares_after=list(options["middlewares_after"] or []),
            extra=options["extra"],
        )
        self.tasks[task_name] = schema
        return self._task_class(
            task_name=task_name, priority=priority, echo=schema.echo, max_time=schema.max_time,
            retry=schema.retry, retry_on_exc=schema.retry_on_exc, decode=schema.decode,
            tags=schema.tags, description=schema.description,
            generate_handler=schema.generate_handler, executor=schema.executor,
            middlewares_before=schema.middlewares_before,
            middlewares_after=schema.middlewares_after, extra=schema.extra, app=self,
        )

    # ------------------------------------------------------------------ calls both faces share

    def _envelope(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                  priority: Optional[int]) -> TaskEnvelope:
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"a task name must be a non-empty string, got {task_name!r}")
        if priority is None:
            registered = self.tasks.get(task_name)
            priority = registered.priority if registered is not None else 0
        elif isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int (lower runs first), got {priority!r}")
        return TaskEnvelope(uuid_module.uuid4().bytes, task_name, self.name, priority, time.time(),
                            pack_arguments(task_name, args, kwargs), {})

    def _add_task_call(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                       priority: Optional[int], timeout: Optional[float]) -> PendingCall[Optional[Task]]:
        envelope = self._envelope(task_name, args, kwargs, priority)
        broker = self.broker
        if timeout is None:
            return PendingCall(broker.submit([envelope]),
                               lambda _: new_task(envelope, tuple(args), kwargs, self),
                               broker.connect_timeout, broker.url)
        return PendingCall(broker.submit([envelope], wait=timeout),
                           lambda found: self._finished(found, [envelope], timeout)[0],
                           timeout + broker.connect_timeout, broker.url)

    def _add_tasks_call(self, calls: Iterable[TaskCall],
                        timeout: Optional[float]) -> PendingCall[list[Optional[Task]]]:
        prepared = []
        for call in calls:
            if isinstance(call, BaseTaskCls):
                if not call.task_name:
                    raise ValueError("Task name is not specified.")
                name, args, kwargs, priority = call.task_name, call.args, call.kwargs, call.priority
            else:
                name, args, kwargs = call
                priority = None
            prepared.append((self._envelope(name, args, kwargs, priority), args, kwargs))
        envelopes = [envelope for envelope, _, _ in prepared]
        broker = self.broker
        if timeout is None:
            return PendingCall(broker.submit(envelopes),
                               lambda _: [new_task(e, tuple(a), k, self) for e, a, k in prepared],
                               broker.connect_timeout, broker.url)
        return PendingCall(broker.submit(envelopes, wait=timeout),
                           lambda found: self._finished(found, envelopes, timeout),
                           timeout + broker.connect_timeout, broker.url)

    def _finished(self, found: list[Optional[TaskSnapshot]], envelopes: list[TaskEnvelope],
                  timeout: float) -> list[Optional[Task]]:
        late = [e for e, snapshot in zip(envelopes, found) if snapshot is None]
        if late:
            shown = ", ".join(f"{e.task_name} {UUID(bytes=e.uuid)}" for e in late[:3])
            self.log.warning(
                "%d task(s) did not finish within %g s (%s%s); they keep running: fetch them later "
                "with app.get(uuid)", len(late), timeout, shown, " ..." if len(late) > 3 else "")
        return [None if s is None else task_from_snapshot(s, self) for s in found]

    def _get_call(self, uuid: Union[UUID, str]) -> PendingCall[Optional[Task]]:
        raw = _uuid_bytes(uuid)
        broker = self.broker
        return PendingCall(broker.get([raw]),
                           lambda found: None if found[0] is None else task_from_snapshot(found[0], self),
                           broker.connect_timeout, broker.url)

    def _wait_call(self, uuid: Union[UUID, str], timeout: float) -> PendingCall[Optional[Task]]:
        raw = _uuid_bytes(uuid)
        broker = self.broker
        return PendingCall(broker.wait([raw], timeout),
                           lambda found: None if found[0] is None else task_from_snapshot(found[0], self),
                           timeout + broker.connect_timeout, broker.url)

    def _stats_call(self) -> PendingCall[dict[str, Any]]:
        broker = self.broker
        return PendingCall(broker.stats(), lambda value: value, broker.connect_timeout, broker.url)

    # ------------------------------------------------------------------ serving

    def _serve(self, processes: int, *, concurrency: Optional[int] = None,
               broker_url: Optional[str] = None, grace: Optional[float] = None) -> int:
        """Run ``processes`` worker processes (and a broker, if none listens); blocks until stopped."""
        from qtasks.worker.supervisor import Supervisor

        self.starter = Supervisor(
            self,
            processes=processes,
            url=check_url(broker_url) if broker_url else self.broker.url,
            concurrency=concurrency or self.config.max_tasks_process,
            grace=self.config.shutdown_grace if grace is None else grace,
        )
        _state.app_main = self
        return self.starter.run()

    @contextmanager
    def serving(self, processes: int = 2, *, concurrency: Optional[int] = None,
                grace: Optional[float] = None) -> Iterator[Any]:
        """Serve this app's tasks from ``processes`` child processes while the block runs.

        For local multi-core batch jobs: no daemon needed (a broker is hosted when none
        listens at the app's URL). Leaving the block stops the workers gracefully::

            with app.serving(processes=8):
                results = app.add_tasks([work(i) for i in range(1000)], timeout=600)
        """
        supervisor = multiprocess.get_context("fork").Process(
            target=_serve_in_child, args=(self, processes, concurrency, grace),
            name="qtasks-supervisor", daemon=False)
        supervisor.start()
        try:
            yield self
        finally:
            if supervisor.is_alive():
                os.kill(supervisor.pid, signal.SIGTERM)
                supervisor.join((self.config.shutdown_grace if grace is None else grace) + 10)
            if supervisor.is_alive():
                supervisor.kill()
                supervisor.join()

    def _stop(self) -> None:
        if self.starter is not None:
            self.starter.stop()

    def close(self) -> None:
        """Close this process's connection to the broker (reopened on next use)."""
        self.broker.close()


def _serve_in_child(app: BaseQueueTasks, processes: int, concurrency: Optional[int],
                    grace: Optional[float]) -> None:
    sys.exit(app._serve(processes, concurrency=concurrency, grace=grace))


def _uuid_bytes(value: Union[UUID, str, bytes]) -> bytes:
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 16:
        return value
    return UUID(str(value)).bytes
