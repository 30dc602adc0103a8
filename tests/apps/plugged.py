"""Apps with a recording plugin on every component, and plugins that change what they are given.

Each process appends ``trigger component pid`` lines to ``$PLUGGED_RECORD`` (when set), so a
test can tell which trigger fired in which process: the client (the test), the supervisor
(``qtasks ... run``) or a worker process.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Optional

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.exc import TaskPluginTriggerError
from qtasks.plugins.base import BasePlugin
from qtasks.schemas.task_status import TaskStatusNewSchema
from qtasks.utils import _build_task


def record(trigger: str, component: str) -> None:
    path = os.environ.get("PLUGGED_RECORD")
    if path:
        with open(path, "a") as out:
            out.write(f"{trigger} {component} {os.getpid()}\n")


class Recorder(BasePlugin):
    """Writes down every trigger of its component; changes nothing."""

    def __init__(self, component: str) -> None:
        super().__init__(f"Recorder-{component}")
        self.component = component

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
        record(name, self.component)

    def start(self, *args: Any, **kwargs: Any) -> None:
        record("plugin_start", self.component)

    def stop(self, *args: Any, **kwargs: Any) -> None:
        record("plugin_stop", self.component)


class AsyncRecorder(Recorder):
    async def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        record(name, self.component)


class Rewriter(BasePlugin):
    """Changes calls at each layer, to show each trigger's answer is honoured."""

    def __init__(self) -> None:
        super().__init__("Rewriter")
        self.handlers = {
            "qtasks_add_task_before_broker": self.rename,
            "broker_add_before": self.stamp_model,
            "task_executor_args_replace": self.swap,
            "worker_execute_before": self.mark_worker,
            "task_executor_after_execute_result_replace": self.wrap_result,
            "qtasks_get": self.label,
            "task_executor_run_task_trigger_error": self.handle,
            "task_executor_run_task_gen": self.total,
        }

    def rename(self, task_name: str, args: Any, kw: dict[str, Any], **_: Any) -> Optional[dict[str, Any]]:
        if task_name != "alias":
            return None
        return {"task_name": "pair", "args": [*args, "added"], "kw": kw, "extra": {"origin": "plugin"}}

    def stamp_model(self, model: TaskStatusNewSchema, **_: Any) -> dict[str, Any]:
        if model.task_name == "pair":
            return {"model": _build_task(model, priority=7, submitted_by=os.getpid())}
        return {"model": model}

    def swap(self, task_executor: Any, args: list[Any], kw: dict[str, Any], **_: Any) -> Optional[dict[str, Any]]:
        if kw.pop("swap", False):
            return {"args": list(reversed(args)), "kw": kw}
        return None

    def mark_worker(self, task_func: Any, model: Any, **_: Any) -> dict[str, Any]:
        return {"model": _build_task(model, ran_in=os.getpid())}

    def wrap_result(self, task_executor: Any, result: Any, **_: Any) -> Optional[dict[str, Any]]:
        if task_executor.task_func.name == "pair":
            return {"result": {"pair": result}}
        return None

    def handle(self, e: TaskPluginTriggerError, **_: Any) -> dict[str, Any]:
        return {"result": f"handled: {e}"}

    def total(self, results: list[Any], **_: Any) -> dict[str, Any]:
        return {"results": [sum(results)]}

    def label(self, task: Any, **_: Any) -> Optional[dict[str, Any]]:
        if task is None or task.task_name != "pair":
            return None
        return {"task": dataclasses.replace(task, status=f"{task.status} (seen by qtasks_get)")}


class Broken(BasePlugin):
    """Fails on the triggers it is registered for."""

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"broken on {name}")


def instrument(app: Any, recorder: type[Recorder]) -> Any:
    app.add_plugin(recorder("app"))
    app.add_plugin(Rewriter())
    app.add_plugin(recorder("broker"), component="broker")
    app.add_plugin(Rewriter(), component="broker")
    app.add_plugin(recorder("worker"), component="worker")
    app.add_plugin(Rewriter(), ["task_executor_args_replace", "worker_execute_before",
                                "task_executor_after_execute_result_replace", "task_executor_run_task_trigger_error",
                                "task_executor_run_task_gen"], component="worker")
    app.add_plugin(recorder("global_config"), component="global_config")
    broken = os.environ.get("PLUGGED_BREAK")
    if broken:
        app.add_plugin(Broken("Broken"), [broken], component="worker")

    @app.task(name="pair")
    def pair(*args: Any) -> list[Any]:
        return list(args)

    @app.task(name="asks_plugins")
    def asks_plugins() -> None:
        raise TaskPluginTriggerError("over to the plugins")

    @app.task(name="steps")
    def steps(n: int) -> Iterator[int]:
        for step in range(n):
            yield step

    @app.task(name="flaky", retry=1)
    def flaky() -> None:
        raise ValueError("always fails")

    return app


sync_app = instrument(QueueTasks(name="plugged-sync"), Recorder)
async_app = instrument(qtasks.asyncio.QueueTasks(name="plugged-async"), AsyncRecorder)
