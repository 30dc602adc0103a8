"""``OpsClient``: what an operator asks a running broker, as plain JSON-able values.

It talks to the broker as any client does (one connection per thread, CURVE keys when
given), so ``qtasks status``, ``qtasks inspect`` and the dashboard see the same facts::

    with OpsClient("tcp://127.0.0.1:5555") as ops:
        ops.status()["queues"]           # depth per priority, delayed, dead
        ops.tasks(status="error", limit=20)
        ops.retry(uuid)                  # a new task, linked to the failed one

A broker that does not answer raises :class:`~qtasks.exc.BrokerUnavailableError` within ``timeout``.
"""

from __future__ import annotations

import uuid as uuid_module
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar

from qtasks.brokers import ZmqBroker
from qtasks.client.calls import PendingCall
from qtasks.configs import QueueConfig
from qtasks.enums import ENDED_STATUSES
from qtasks.exc import BrokerReplyError, InvalidTaskIdError, TaskNotFoundError
from qtasks.ops.values import task_dict, uuid_text
from qtasks.protocol import Dead, Ops, TaskSnapshot, TaskView
from qtasks.security import CURVE_SETTINGS

T = TypeVar("T")

DEFAULT_CANCEL_REASON = "cancelled by an operator"
STATUSES = ("new", "process", "success", "error", "cancel", "retry")


def task_id(value: Any) -> bytes:
    """The raw uuid of ``value`` (a ``uuid.UUID`` or its text); InvalidTaskIdError otherwise."""
    if isinstance(value, uuid_module.UUID):
        return value.bytes
    try:
        return uuid_module.UUID(str(value)).bytes
    except ValueError:
        raise InvalidTaskIdError(value) from None


class OpsClient:
    """Status, task records and the actions on them, from the broker at ``url``.

    ``app``: only that app's tasks in ``tasks`` and the dead letters (None: every app's).
    ``curve_options``: ``curve_server_key``, ``curve_secret_key``, ``curve_public_key``, as an app's
    settings take them (key files or z85 text); unset ones come from ``QTASKS_CURVE_*``.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, app: str | None = None, **curve_options: Any) -> None:
        unknown = sorted(set(curve_options) - set(CURVE_SETTINGS))
        if unknown:
            raise TypeError(f"OpsClient got unknown option(s) {', '.join(unknown)}; it takes "
                            f"{', '.join(CURVE_SETTINGS)}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        config = QueueConfig()
        for setting, value in curve_options.items():
            if value is not None:
                setattr(config, setting, value)
        self.app = app
        self.timeout = timeout
        self._broker = ZmqBroker(url=url, config=config, connect_timeout=timeout)
        self.url = self._broker.url

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        """Queues, workers and what they run, rates over the last minute, totals, failures by exception
        type, timers' next fires (the schema is in the README, "Seeing what runs")."""
        value: dict[str, Any] = self._ask(lambda b: b.ops("status", {}), _as_map)
        value.setdefault("broker", {})["url"] = self.url
        return value

    def tasks(self, *, status: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest task records (last submitted first) of ``status`` and task ``name``, at most ``limit``."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= Ops.MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 0 to {Ops.MAX_LIMIT}, got {limit!r}")
        args: dict[str, Any] = {key: value for key, value in (("status", status), ("name", name), ("app", self.app))
                if value is not None}
        args["limit"] = limit
        views: list[TaskView] = self._ask(lambda b: b.ops("tasks", args), lambda v: v)
        return [task_dict(view) for view in views]

    def inspect(self, uuid: str) -> dict[str, Any]:
        """One task's record: arguments, result or traceback, generator steps, retry chain."""
        raw = task_id(uuid)
        view: Optional[TaskView] = self._ask(lambda b: b.ops("inspect", {"uuid": raw}), lambda v: v)
        if view is None:
            raise TaskNotFoundError(uuid_text(raw), self.url)
        return task_dict(view)

    def dead_letters(self, *, limit: int = 100) -> dict[str, Any]:
        """``{"count": all dead letters, "dead_letters": [task dicts, oldest first, at most limit]}``."""
        limit = max(0, min(limit, Ops.MAX_LIMIT))
        count, found = self._ask(lambda b: b.dead("list", self.app, None, [], limit), lambda v: v)
        return {"count": count, "dead_letters": [task_dict(TaskView(s)) for s in found]}

    # ------------------------------------------------------------------ acting

    def cancel(self, uuid: str, reason: str | None = None) -> bool:
        """Cancel the task (the last of its retry chain); False when it had ended already."""
        raw = task_id(uuid)
        before: list[Optional[TaskSnapshot]] = self._ask(lambda b: b.get([raw]), lambda v: v)
        if not before or before[0] is None:
            raise TaskNotFoundError(uuid_text(raw), self.url)
        after: list[Optional[TaskSnapshot]] = self._ask(
            lambda b: b.cancel([raw], reason or DEFAULT_CANCEL_REASON), lambda v: v)
        was, now = before[0], after[0] if after else None
        if now is None:
            raise TaskNotFoundError(uuid_text(raw), self.url)
        if now.envelope.uuid != was.envelope.uuid:  # it was retried: the cancel reached its last attempt
            return now.status == "cancel"
        return was.status not in ENDED_STATUSES and now.status == "cancel"

    def retry(self, uuid: str) -> str:
        """Run a task that ended ``error`` or ``cancel`` again, as a new task whose record links back to
        it (``retry_of``); returns the new task's uuid."""
        raw = task_id(uuid)
        try:
            child: bytes = self._ask(lambda b: b.ops("retry", {"uuid": raw}), lambda v: v)
        except BrokerReplyError as exc:
            if exc.code == "no-such-task":
                raise TaskNotFoundError(uuid_text(raw), self.url) from None
            raise
        return uuid_text(child)

    def retry_all_dead(self) -> int:
        """Run every dead letter (of ``app``) again; how many."""
        count, _ = self._ask(lambda b: b.dead("list", self.app, None, [], 0), lambda v: v)
        total = 0
        for _ in range(-(-count // Dead.BATCH)):  # those there now: one that fails again waits
            children = self._ask(lambda b: b.dead("retry", self.app, None, [], None), lambda v: v)
            total += sum(child is not None for child in children)
        return total

    # ------------------------------------------------------------------ plumbing

    def _ask(self, start: Callable[[Any], Future[Any]], convert: Callable[[Any], T]) -> T:
        return PendingCall(self._broker, start, convert, self.timeout).result()

    def close(self) -> None:
        self._broker.close()

    def __enter__(self) -> OpsClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _as_map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BrokerReplyError("malformed", f"a status reply must be a map, got {type(value).__name__}")
    return value
