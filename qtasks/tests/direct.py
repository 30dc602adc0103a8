"""Running one task in this process through the worker's own pipeline, with no broker.

What ``TestConfig.only_worker()`` does with ``add_task``: the task runs as a worker process
would run it (plugins, Depends, State, middlewares, executor, events), and a finished
``Task`` comes back. A task that asks to be retried runs again at once (``retry=`` and
``Retry`` alike; a retry's delay is not waited for), and the last run's record is returned,
carrying ``retry_parent_uuid`` as the broker would set it.
"""

from __future__ import annotations

import uuid as uuid_module
from typing import Any, Optional, Sequence

from qtasks.client.convert import task_from_snapshot
from qtasks.enums import TaskStatusEnum as Status
from qtasks.protocol import Delivery, TaskEnvelope, TaskOutcome, TaskSnapshot
from qtasks.tasks.record import Task
from qtasks.worker.running import RunningTask, TaskRunner

MAX_RUNS = 100
"""A bound on the runs of one call, whatever a task's retry budget says."""


async def run_directly(app: Any, task_name: str, args: Sequence[Any], kwargs: dict[str, Any],
                       priority: Optional[int]) -> Task[Any]:
    served = app.worker.serve(app)
    steps: list[bytes] = []
    runner = TaskRunner(served, report_step=lambda _delivery, _index, value: steps.append(value),
                        watch_thread=lambda _name, _uuid, _done: None)
    envelope = app._envelope(task_name, args, kwargs, priority)
    lineage: dict[str, Any] = {}
    for _ in range(MAX_RUNS):
        steps.clear()
        outcome = await runner.run(Delivery(envelope, 1), RunningTask())
        remaining = outcome.extra.get("retry")
        if outcome.status != Status.RETRY or not isinstance(remaining, int) or remaining < 1:
            break
        lineage = {"retry": remaining - 1, "retry_parent_uuid": str(uuid_module.UUID(bytes=envelope.uuid))}
        envelope = TaskEnvelope(uuid_module.uuid4().bytes, envelope.task_name, envelope.queue, envelope.priority,
                                envelope.created_at, envelope.payload, {**envelope.metadata, **lineage})
    return task_from_snapshot(_snapshot(envelope, outcome, lineage, steps), app.waiter)


def _snapshot(envelope: TaskEnvelope, outcome: TaskOutcome, lineage: dict[str, Any],
              steps: list[bytes]) -> TaskSnapshot:
    status = Status.ERROR.value if outcome.status == Status.RETRY else outcome.status  # past MAX_RUNS
    return TaskSnapshot(envelope, status, outcome.returning, outcome.traceback, outcome.finished_at, 1,
                        {**lineage, **outcome.extra}, list(steps))
