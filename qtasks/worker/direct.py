"""Which tasks a chunk (``task.map``) may call directly, without building an executor per call.

A call through the executor fires some twenty plugin triggers, middlewares and events;
for a task that none of them touch, that is all the cost of a tiny call (~80 µs against
a few µs of work). A task may be called directly when nothing would see the difference:

- the task: the default executor, no ``echo``, ``decode``, ``max_time``, generator or
  middlewares of its own, and no middlewares of the app;
- the plugins: every plugin the worker has says it ``leaves_alone`` this function (the
  built-in Depends, State and pydantic plugins do for a function without their
  parameters; the retry plugin acts on failures only, and failures take the full path);
- no task events, no ``worker_add``/``worker_*`` triggers a plugin listens to around a run.

Everything else, and every failure, goes through the executor as any task does.
"""

from __future__ import annotations

from typing import Any

from qtasks.plugins.triggers import listened
from qtasks.tasks.spec import TaskExecSchema
from qtasks.worker.component import ServedApp

AROUND_A_RUN = ("worker_add", "worker_run_task_before", "worker_execute_before", "worker_remove_finished_task",
                "worker_execute_after")
BROKER_AROUND_A_RUN = ("broker_add_worker", "broker_remove_finished_task")


def callable_directly(served: ServedApp, schema: TaskExecSchema, events: set[str]) -> bool:
    """Whether a chunk's calls of ``schema`` may skip the executor (see the module's docstring)."""
    if (schema.executor is not None or schema.echo or schema.decode is not None or schema.max_time is not None
            or schema.generating or schema.middlewares_before or schema.middlewares_after or events):
        return False
    runtime = served.runtime
    if runtime.middlewares_before or runtime.middlewares_after:
        return False
    worker_plugins = getattr(served.worker, "plugins", None) or {}
    broker_plugins = getattr(served.broker, "plugins", None) or {}
    if any(listened(worker_plugins, name) for name in AROUND_A_RUN):
        return False
    if any(listened(broker_plugins, name) for name in BROKER_AROUND_A_RUN):
        return False
    plugins = {id(p): p for found in served.plugins.values() for p in found}
    return all(_leaves_alone(plugin, schema) for plugin in plugins.values())


def _leaves_alone(plugin: Any, schema: TaskExecSchema) -> bool:
    check = getattr(plugin, "leaves_alone", None)
    return bool(check is not None and check(schema.func))
