"""Turning wire records into the ``Task`` objects the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from qtasks.protocol import TaskEnvelope, TaskSnapshot, unpack_arguments, unpack_value
from qtasks.tasks.record import Task, Waiter, task_class, with_waiter

_TASK_FIELDS = frozenset({"retry", "retry_child_uuid", "retry_parent_uuid"})


def new_task(envelope: TaskEnvelope, args: tuple[Any, ...], kwargs: dict[str, Any], waiter: Waiter) -> Task[Any]:
    """The ``Task`` that ``add_task`` returns once the broker stored it (status ``new``)."""
    created = datetime.fromtimestamp(envelope.created_at)
    task: Task[Any] = Task("new", UUID(bytes=envelope.uuid), envelope.priority, envelope.task_name,
                           args, kwargs, created, created)
    return with_waiter(task, waiter)


def task_from_snapshot(snapshot: TaskSnapshot, waiter: Waiter) -> Task[Any]:
    envelope = snapshot.envelope
    args, kwargs = unpack_arguments(envelope.payload)
    extra = snapshot.extra
    extras = {k: v for k, v in extra.items() if k not in _TASK_FIELDS} if extra else {}
    if snapshot.steps:
        extras["steps"] = [unpack_value(step) for step in snapshot.steps]
    cls = task_class(frozenset(extras)) if extras else Task
    task = cls(
        snapshot.status,
        UUID(bytes=envelope.uuid),
        envelope.priority,
        envelope.task_name,
        args,
        kwargs,
        datetime.fromtimestamp(envelope.created_at),
        datetime.fromtimestamp(snapshot.updated_at),
        None if snapshot.returning is None else unpack_value(snapshot.returning),
        snapshot.traceback,
        extra.get("retry"),
        extra.get("retry_child_uuid"),
        extra.get("retry_parent_uuid"),
        snapshot.attempts,
        **extras,
    )
    return with_waiter(task, waiter)
