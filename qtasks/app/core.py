"""The app core shared by both faces (``qtasks.QueueTasks`` and ``qtasks.asyncio.QueueTasks``).

Everything that is not "block or await" lives here: registration, building
envelopes, turning replies into ``Task`` objects, serving. Each public method of
a face is one line: build a :class:`~qtasks.client.calls.PendingCall` here, then
``.result()`` it (sync) or ``await .wait_async()`` it (async). Upstream code imports
this class as ``qtasks.base.qtasks.BaseQueueTasks``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterable, Iterator, Optional, Sequence, Union
from uuid import UUID

import multiprocess

from qtasks.brokers import BaseBroker, ZmqBroker
from qtasks.client.calls import Hook, PendingCall
from qtasks.client.convert import new_task, task_from_snapshot
from qtasks.configs import QueueConfig
from qtasks.configs.global_config import global_config_for
from qtasks.current import set_current_app
from qtasks.events import BaseEvents
from qtasks.exc import InvalidTaskIdError, QTasksError
from qtasks.ids import new_uuid_bytes
from qtasks.inert import warn_inert
from qtasks.logs import Logger, configured_level, follow_server_level
from qtasks.plugins.base import BasePlugin, run_to_end
from qtasks.plugins.triggers import Plugins, add_plugin, listened
from qtasks.protocol import DEFAULT_MAX_MESSAGE_SIZE, TaskEnvelope, TaskSnapshot, pack_arguments, unpack_value
from qtasks.schemas.task_status import TaskStatusNewSchema, extra_fields
from qtasks.security import config_keys
from qtasks.storages.remote import RemoteStorage
from qtasks.tasks.objects import BaseTaskCls
from qtasks.tasks.record import Task
from qtasks.tasks.registry import TaskRegistrar, TaskRegistry
from qtasks.tasks.routers import BaseRouter
from qtasks.tasks.spec import TaskExecSchema
from qtasks.urls import check_url
from qtasks.utils.builds import _build_task
from qtasks.version import __version__
from qtasks.worker.component import Worker

TaskCall = Union[BaseTaskCls[Any], tuple[str, Sequence[Any], dict[str, Any]]]


class BaseQueueTasks(TaskRegistrar):
    _method: ClassVar[str]
    _events_class: ClassVar[type[BaseEvents]]

    def __init__(
        self,
        name: str = "QueueTasks",
        broker_url: Optional[str] = None,
        broker: Optional[BaseBroker] = None,
        worker: Optional[Worker] = None,
        log: Optional[Logger] = None,
        config: Optional[QueueConfig] = None,
        events: Any = None,
        *,
        curve_server_key: Optional[str] = None,
        curve_public_key: Optional[str] = None,
        curve_secret_key: Optional[str] = None,
    ) -> None:
        """``curve_*``: CURVE keys for a broker started with ``--curve-secret-key`` (key files or z85
        text; see :mod:`qtasks.security`). They set the config's fields of those names, so worker
        processes and connections opened later use them too; a bad key file fails here."""
        self.name = name
        self.version = __version__
        self.config = config if config is not None else QueueConfig()
        keys = dict(curve_server_key=curve_server_key, curve_public_key=curve_public_key,
                    curve_secret_key=curve_secret_key)
        for setting, value in keys.items():
            if value is not None:
                setattr(self.config, setting, str(value))
        if any(value is not None for value in keys.values()):
            config_keys(self.config)  # a missing or malformed key file is reported now, naming it
        self.log = (log.with_subname("QueueTasks") if log is not None else
                    Logger(name, "QueueTasks", self.config.logs_default_level_server,
                           self.config.logs_format))
        self.events = events if events is not None else self._events_class()
        """One events object for the app and every component it builds (upstream split them)."""
        component: dict[str, Any] = dict(log=self.log, config=self.config, events=self.events)
        self.broker = broker if broker is not None else ZmqBroker(name, broker_url, **component)
        self.worker = worker if worker is not None else Worker(name, self.broker, **component)
        self.global_config = global_config_for(self, self._method)
        if getattr(self.broker, "storage", None) is None:
            self.broker.storage = RemoteStorage(name, self.global_config, **component)
        self.starter: Any = None
        self.routers: list[Any] = []
        self.plugins: Plugins = {}
        """The app's own plugins: the ``qtasks_*`` and ``starter_*`` triggers."""
        self.tasks: dict[str, TaskExecSchema] = self.worker._tasks
        self.waiter = _AppWaiter(self)
        """How the ``Task`` records this app returns wait for themselves."""
        self.config.subscribe(self._config_changed)
        set_current_app(self)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.name!r} at {self.broker.url}>"

    @property
    def storage(self) -> Any:
        """The broker daemon's storage as this app sees it (``app.broker.storage``)."""
        return getattr(self.broker, "storage", None)

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None,
                   component: Optional[str] = None) -> None:
        """Register ``plugin`` for ``trigger_names`` (None: every trigger) on the app, or on one of its
        components: ``"worker"``, ``"broker"``, ``"storage"``, ``"global_config"``."""
        if component is None:
            add_plugin(self.plugins, plugin, trigger_names)
            return
        target = {"worker": self.worker, "broker": self.broker, "storage": self.storage,
                  "global_config": self.global_config}.get(component)
        if target is None:
            raise KeyError(f"Unable to get component {component}! Use worker, broker, storage or global_config")
        if component == "storage":
            warn_inert("add_plugin(component=\"storage\")")
        target.add_plugin(plugin, trigger_names)

    def update_config(self, config: QueueConfig) -> None:
        """Use ``config`` here and in every component (worker processes started later see it too)."""
        self.config = config
        config.subscribe(self._config_changed)
        follow_server_level(config.logs_default_level_server)
        for component in (self.broker, self.worker, self.storage, self.global_config):
            if component is not None and hasattr(component, "update_config"):
                component.update_config(config)

    def _config_changed(self, config: QueueConfig, key: str, value: Any) -> None:
        if config is self.config and key == "logs_default_level_server":
            follow_server_level(value)

    # ------------------------------------------------------------------ registration

    def _default_priority(self) -> int:
        return self.config.task_default_priority

    def _task_app(self) -> Any:
        return self

    def _lookup(self, task_name: str) -> Optional[TaskExecSchema]:
        """The task registered as ``task_name`` here, or a shared task of that name (adopted now)."""
        schema = self.tasks.get(task_name)
        if schema is None:
            schema = TaskRegistry.get_task(task_name)
            if schema is not None:
                self.tasks[task_name] = schema
        return schema

    def _adopt_shared_tasks(self) -> None:
        for name, schema in TaskRegistry.all_tasks().items():
            self.tasks.setdefault(name, schema)

    def include_router(self, router: BaseRouter) -> None:
        """Register a router's tasks here and bind its task objects to this app."""
        clashes = sorted(set(router.tasks) & set(self.tasks))
        if clashes:
            raise ValueError(f"Task with name {clashes[0]} is already registered!")
        self.tasks.update(router.tasks)
        for trigger, plugins in router.plugins.items():
            self.plugins.setdefault(trigger, []).extend(plugins)
        for task in router.task_objects:
            task._app = self
            task.ctx._app = self
        self.routers.append(router)

    def add_middleware(self, middleware: type, position: str = "before", **kwargs: Any) -> None:
        """Run ``middleware`` around every task of this app (``position``: "before" or "after")."""
        if position not in ("before", "after"):
            raise ValueError(f'middleware position must be "before" or "after", got {position!r}')
        if not callable(middleware):
            raise TypeError(f"a middleware is a class taking the task executor, got {middleware!r}")
        getattr(self.worker, f"task_middlewares_{position}").append(middleware)

    # ------------------------------------------------------------------ calls both faces share

    def _envelope(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                  priority: Optional[int], uuid: Optional[UUID] = None,
                  fields: Optional[dict[str, Any]] = None) -> TaskEnvelope:
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"a task name must be a non-empty string, got {task_name!r}")
        if priority is None:
            registered = self._lookup(task_name)
            priority = registered.priority if registered is not None and registered.priority is not None else 0
        elif isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int (lower runs first), got {priority!r}")
        limit = self.broker.max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        raw = uuid.bytes if uuid is not None else new_uuid_bytes()
        return TaskEnvelope(raw, task_name, self.name, priority, time.time(),
                            pack_arguments(task_name, args, kwargs, limit), {"fields": fields} if fields else {})

    def _add_task_call(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                       priority: Optional[int], timeout: Optional[float],
                       uuid: Optional[UUID] = None) -> PendingCall[Optional[Task[Any]]]:
        """Submit one call; ``uuid`` (else a random one) names the task: the broker stores a uuid
        once, so two submits of one uuid make one task (timers rely on it)."""
        call = _Submission(self, task_name, args, kwargs, priority, uuid)
        broker = self.broker
        before = _hooks((self.plugins, "qtasks_add_task_before_broker", call.before_arguments, call.change),
                        (broker.plugins, "broker_add_before", call.model_arguments, call.change_model))
        after = _hooks((broker.plugins, "broker_add_after", call.model_arguments, _unchanged),
                       (self.plugins, "qtasks_add_task_after_broker", call.after_arguments, _unchanged))
        if not before:
            call.envelope()  # a bad call fails here, before a connection is opened
        if timeout is None:
            return PendingCall(broker, lambda b: b.submit([call.envelope()]), call.new_task,
                               broker.connect_timeout, before=before, after=after,
                               pipelined=lambda b: b.submit_pipelined([call.envelope()]))
        return PendingCall(broker, lambda b: b.submit([call.envelope()], wait=timeout),
                           lambda found: self._finished(found, [call.envelope()], timeout)[0],
                           timeout + broker.connect_timeout, waits_for_tasks=True,
                           convert_lost=self._tasks_of, before=before, after=after)

    def _add_tasks_call(self, calls: Iterable[TaskCall],
                        timeout: Optional[float]) -> PendingCall[list[Optional[Task[Any]]]]:
        prepared = []
        args: Sequence[Any]
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
            return PendingCall(broker, lambda b: b.submit(envelopes),
                               lambda _: [new_task(e, tuple(a), k, self.waiter) for e, a, k in prepared],
                               broker.connect_timeout)
        return PendingCall(broker, lambda b: b.submit(envelopes, wait=timeout),
                           lambda found: self._finished(found, envelopes, timeout),
                           timeout + broker.connect_timeout, waits_for_tasks=True,
                           convert_lost=self._tasks_of)

    def _finished(self, found: list[Optional[TaskSnapshot]], envelopes: list[TaskEnvelope],
                  timeout: float) -> list[Optional[Task[Any]]]:
        late = [e for e, snapshot in zip(envelopes, found, strict=True) if snapshot is None]
        if late:
            shown = ", ".join(f"{e.task_name} {UUID(bytes=e.uuid)}" for e in late[:3])
            self.log.warning(
                "%d task(s) did not finish within %g s (%s%s); they keep running: fetch them later "
                "with app.get(uuid)", len(late), timeout, shown, " ..." if len(late) > 3 else "")
        return self._tasks_of(found)

    def _get_call(self, uuid: Union[UUID, str]) -> PendingCall[Optional[Task[Any]]]:
        raw = _uuid_bytes(uuid)
        broker = self.broker
        after = _hooks((broker.plugins, "broker_get", lambda task: dict(broker=broker, task=task), _task_answer),
                       (self.plugins, "qtasks_get", lambda task: dict(qtasks=self, broker=broker, task=task),
                        _task_answer))
        return PendingCall(broker, lambda b: b.get([raw]), self._first_task, broker.connect_timeout, after=after)

    def _wait_call(self, uuid: Union[UUID, str], timeout: float) -> PendingCall[Optional[Task[Any]]]:
        raw = _uuid_bytes(uuid)
        broker = self.broker
        return PendingCall(broker, lambda b: b.wait([raw], timeout), self._first_task,
                           timeout + broker.connect_timeout, waits_for_tasks=True)

    def _cancel_call(self, uuid: Union[UUID, str], reason: str) -> PendingCall[Optional[Task[Any]]]:
        broker = self.broker
        raw = _uuid_bytes(uuid)
        return PendingCall(broker, lambda b: b.cancel([raw], reason), self._first_task, broker.connect_timeout)

    def _follow(self, uuid: Union[UUID, str], timeout: float, on_item: Callable[[tuple[Any, ...]], None]) -> None:
        """Start following a task's steps; ``on_item`` gets them (see ``stream``)."""
        self.broker.watch(_uuid_bytes(uuid), timeout, on_item)

    def _stream_limit(self, timeout: float) -> float:
        return timeout + self.broker.connect_timeout + 5.0

    def _stats_call(self) -> PendingCall[dict[str, Any]]:
        broker = self.broker
        return PendingCall(broker, lambda b: b.stats(), lambda value: value, broker.connect_timeout)

    def _workers_call(self) -> PendingCall[tuple[int, int]]:
        """(processes, slots) of the workers serving this app now (a map sizes its window by them)."""
        def serving(stats: dict[str, Any]) -> tuple[int, int]:
            mine = [w for w in stats.get("workers", ()) if w.get("queue") == self.name]
            return len(mine), sum(int(w.get("concurrency", 0)) for w in mine)

        broker = self.broker
        return PendingCall(broker, lambda b: b.stats(), serving, broker.connect_timeout)

    def _ping_call(self) -> PendingCall[bytes]:
        broker = self.broker
        before = _hooks((self.plugins, "qtasks_ping", lambda _: dict(qtasks=self, global_config=self.global_config),
                         _unchanged))
        return PendingCall(broker, lambda b: b.ping(), lambda boot_id: boot_id, broker.connect_timeout,
                           before=before)

    def _flush_all_call(self) -> PendingCall[int]:
        broker = self.broker
        before = _hooks((self.plugins, "qtasks_flush_all", lambda _: dict(qtasks=self, broker=broker), _unchanged),
                        (broker.plugins, "broker_flush_all", lambda _: dict(broker=broker), _unchanged))
        return PendingCall(broker, lambda b: b.flush(self.name), int, broker.connect_timeout, before=before)

    def _dead_call(self, op: str, task_name: Optional[str] = None, uuids: Sequence[Union[UUID, str]] = (),
                   limit: Optional[int] = None) -> PendingCall[Any]:
        """Dead letters of this app (tasks that ended ``error`` for good): ``list``, ``count``, ``retry``
        or ``purge``."""
        broker = self.broker
        raw = [_uuid_bytes(uuid) for uuid in uuids]
        def listed(found: tuple[int, list[TaskSnapshot]]) -> list[Task[Any]]:
            return [task_from_snapshot(snapshot, self.waiter) for snapshot in found[1]]

        converts: dict[str, Callable[[Any], Any]] = {"list": listed, "retry": self._tasks_of, "purge": int,
                                                     "count": lambda found: found[0]}
        convert = converts[op]
        if op == "count":
            op, limit = "list", 0
        return PendingCall(broker, lambda b: b.dead(op, self.name, task_name, raw, limit), convert,
                           broker.connect_timeout)

    def _tasks_of(self, found: list[Optional[TaskSnapshot]]) -> list[Optional[Task[Any]]]:
        return [None if s is None else task_from_snapshot(s, self.waiter) for s in found]

    def _first_task(self, found: list[Optional[TaskSnapshot]]) -> Optional[Task[Any]]:
        return None if found[0] is None else task_from_snapshot(found[0], self.waiter)

    # ------------------------------------------------------------------ serving

    def _serve(self, processes: int, *, concurrency: Optional[int] = None,
               broker_url: Optional[str] = None, grace: Optional[float] = None,
               log_level: Union[str, int, None] = None, starter: Any = None, reset_config: bool = True) -> int:
        """Run ``processes`` worker processes (and a broker, if none listens); blocks until stopped.

        Every client call the app makes while serving (in its tasks, its event handlers)
        goes to the broker it serves."""
        from qtasks.worker.supervisor import Supervisor

        if starter is None:
            starter = Supervisor(self, url=check_url(broker_url) if broker_url else None, concurrency=concurrency,
                                 grace=grace,
                                 log_level=configured_level(log_level, self.config.logs_default_level_server))
        elif getattr(starter, "app", None) is None:
            starter.app = self
        self.starter = starter
        set_current_app(self)
        code = run_to_end(starter.start(num_workers=processes, reset_config=reset_config, plugins=self.plugins))
        return code if isinstance(code, int) else 0

    def _run_forever(self, num_workers: int, *, starter: Any, reset_config: bool) -> None:
        code = self._serve(num_workers, starter=starter, reset_config=reset_config)
        if code:
            raise SystemExit(code)

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


class _Submission:
    """One ``add_task`` call, which a ``qtasks_add_task_before_broker`` plugin may change before its
    envelope is built (``task_name``, ``priority``, ``args``, ``kw``, and ``extra``: fields stored on
    the task's record)."""

    __slots__ = ("app", "task_name", "args", "kwargs", "priority", "uuid", "extra", "_envelope")

    def __init__(self, app: BaseQueueTasks, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                 priority: Optional[int], uuid: Optional[UUID]) -> None:
        self.app = app
        self.task_name = task_name
        self.args = args
        self.kwargs = kwargs
        self.priority = priority
        self.uuid = uuid
        self.extra: Optional[dict[str, Any]] = None
        self._envelope: Optional[TaskEnvelope] = None

    def envelope(self) -> TaskEnvelope:
        if self._envelope is None:
            self._envelope = self.app._envelope(self.task_name, self.args, self.kwargs, self.priority, self.uuid,
                                                self.extra)
        return self._envelope

    def new_task(self, _: Any) -> Optional[Task[Any]]:
        return new_task(self.envelope(), tuple(self.args), self.kwargs, self.app.waiter)

    def before_arguments(self, _: Any) -> dict[str, Any]:
        return dict(qtasks=self.app, broker=self.app.broker, task_name=self.task_name,
                    priority=self.priority, args=self.args, kw=self.kwargs)

    def model_arguments(self, _: Any) -> dict[str, Any]:
        envelope = self.envelope()
        model = TaskStatusNewSchema(task_name=self.task_name, priority=envelope.priority, args=list(self.args),
                                    kwargs=self.kwargs, created_at=envelope.created_at)
        if self.extra:
            model = _build_task(model, **self.extra)
        return dict(broker=self.app.broker, storage=self.app.storage, model=model)

    def change_model(self, answer: dict[str, Any], _: Any) -> None:
        model = answer.get("model")
        if model is None:
            return
        if not isinstance(model, TaskStatusNewSchema):
            raise ValueError("Invalid task status.")
        self.priority = model.priority
        added = extra_fields(model, TaskStatusNewSchema)
        if added:
            self.extra = {**(self.extra or {}), **added}
        self._envelope = None
        self.envelope()

    def after_arguments(self, task: Any) -> dict[str, Any]:
        return dict(qtasks=self.app, broker=self.app.broker, task_name=self.task_name,
                    priority=self.envelope().priority, args=self.args, kwargs=self.kwargs)

    def change(self, answer: dict[str, Any], _: Any) -> None:
        self.task_name = answer.get("task_name", self.task_name)
        self.priority = answer.get("priority", self.priority)
        self.args = answer.get("args", self.args)
        self.kwargs = answer.get("kw", self.kwargs)
        extra = answer.get("extra")
        if extra is not None:
            if not isinstance(extra, dict):
                raise TypeError(f"qtasks_add_task_before_broker: extra must be a dict of record fields, "
                                f"got {type(extra).__name__}")
            self.extra = extra
        self._envelope = None
        self.envelope()


def _hooks(*wanted: tuple[Plugins, str, Callable[[Any], dict[str, Any]], Callable[[dict[str, Any], Any], Any]]
           ) -> list[Hook]:
    """Hooks for the triggers some plugin listens to (none: the call pays nothing)."""
    return [Hook(plugins, name, arguments, apply) for plugins, name, arguments, apply in wanted
            if listened(plugins, name)]


def _unchanged(_: dict[str, Any], value: Any) -> Any:
    return value


def _task_answer(answer: dict[str, Any], task: Any) -> Any:
    return answer.get("task", task)


class _AppWaiter:
    """The narrow part of an app a ``Task`` needs: waiting for a task to end."""

    __slots__ = ("app",)

    def __init__(self, app: BaseQueueTasks) -> None:
        self.app = app

    def wait(self, uuid: UUID, timeout: float) -> Optional[Task[Any]]:
        return self.app._wait_call(uuid, timeout).result()

    async def wait_async(self, uuid: UUID, timeout: float) -> Optional[Task[Any]]:
        return await self.app._wait_call(uuid, timeout).wait_async()


def stream_item(item: tuple[Any, ...]) -> tuple[bool, Any]:
    """(ended, step value) of an item a followed task produced; raises what ended it badly."""
    if item[0] == "step":
        return False, unpack_value(item[2])
    error = item[2]
    if error is not None:
        raise error
    return True, None


def _serve_in_child(app: BaseQueueTasks, processes: int, concurrency: Optional[int],
                    grace: Optional[float]) -> None:
    from qtasks.worker.signals import stop_when_parent_dies

    stop_when_parent_dies()  # a program killed inside `with app.serving():` leaves no workers behind
    try:
        code = app._serve(processes, concurrency=concurrency, grace=grace)
    except QTasksError as exc:  # e.g. NotABrokerError: the app's own calls in the parent say so too
        logging.getLogger("qtasks.supervisor").error("cannot serve %r: %s", app.name, exc)
        code = 2
    sys.exit(code)


def _uuid_bytes(value: Union[UUID, str, bytes]) -> bytes:
    if isinstance(value, UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 16:
        return value
    try:
        return UUID(str(value)).bytes
    except ValueError:
        raise InvalidTaskIdError(value) from None
