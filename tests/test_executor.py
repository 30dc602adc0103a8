"""The executor pipeline in-process: order of steps, generators, echo, pydantic, time limits."""

from __future__ import annotations

import asyncio
import time
import uuid

import anyio
import pytest
from pydantic import BaseModel

from qtasks import QueueTasks
from qtasks.exc import TaskPluginTriggerError, TaskTimeLimitError
from qtasks.executors import AsyncTaskExecutor
from qtasks.middlewares import TaskMiddleware
from qtasks.tasks.spec import TaskPrioritySchema


def make_app() -> QueueTasks:
    return QueueTasks(name=f"executor-{uuid.uuid4().hex[:6]}", broker_url="tcp://127.0.0.1:9")


def run(app: QueueTasks, name: str, *args, steps: list | None = None, **kwargs):
    schema = app.tasks[name]
    served = app.worker.serve(app)
    executor = AsyncTaskExecutor(schema, TaskPrioritySchema(0, uuid.uuid4(), name, list(args), kwargs),
                                 plugins=served.plugins, runtime=served.runtime)
    if steps is not None:
        executor.step_reporter = lambda index, value: steps.append((index, value))

    async def main():
        return await executor.execute()

    return anyio.run(main)


def test_steps_run_in_order_and_middlewares_once_per_execution():
    app = make_app()
    order: list[str] = []

    class Before(TaskMiddleware):
        def __call__(self):
            order.append(f"before {self.task_executor._args}")
            self.task_executor._args.append("from middleware")

    class After(TaskMiddleware):
        async def __call__(self):
            order.append(f"after {self.task_executor._result}")
            self.task_executor._result = self.task_executor._result.upper()

    class AppWide(TaskMiddleware):
        def __call__(self):
            order.append("app-wide")

    app.add_middleware(AppWide, position="before")
    with pytest.raises(ValueError, match="before.*after"):
        app.add_middleware(AppWide, position="middle")

    @app.task(middlewares_before=[Before], middlewares_after=[After], decode=lambda r: f"<{r}>")
    def joined(*parts):
        order.append("call")
        return " ".join(parts)

    assert run(app, "joined", "x") == "<X FROM MIDDLEWARE>"
    assert run(app, "joined", "y") == "<Y FROM MIDDLEWARE>"
    assert order == ["before ['x']", "app-wide", "call", "after x from middleware"] + \
                    ["before ['y']", "app-wide", "call", "after y from middleware"]


def test_generators_send_handled_values_back_and_report_steps():
    app = make_app()

    @app.task(generate_handler=lambda v: v * 10)
    def collects():
        got = []
        for i in range(3):
            got.append((yield i))
        return got

    @app.task
    def plain_list():
        yield "a"
        yield "b"

    async def handler(v):
        await anyio.sleep(0)
        return -v

    @app.task(generate_handler=handler)
    async def async_gen():
        for i in range(1, 4):
            yield i

    steps: list = []
    assert run(app, "collects", steps=steps) == [0, 10, 20]
    assert steps == [(0, 0), (1, 10), (2, 20)]
    assert run(app, "plain_list") == ["a", "b"]
    assert run(app, "async_gen") == [-1, -2, -3]


def test_echo_gives_a_bound_task_object_and_dependencies_still_resolve():
    app = make_app()
    from qtasks import Depends

    @app.task(echo=True)
    async def me(self, value, extra=Depends(lambda: "provided")):
        return [type(self).__name__, self.ctx.task_name, value, extra, self.ctx.get_config() is app.config]

    @app.task(echo=True)
    def sync_me(self):
        return type(self).__name__

    assert run(app, "me", 1) == ["AsyncTask", "me", 1, "provided", True]
    assert run(app, "sync_me") == "SyncTask"


def test_pydantic_arguments_and_results():
    app = make_app()

    class Point(BaseModel):
        x: int
        y: int = 0

    @app.task
    def shift(point: Point, by: int = 1):
        return Point(x=point.x + by, y=point.y + by)

    assert run(app, "shift", x=1, y=2) == {"x": 2, "y": 3}
    assert run(app, "shift", 5, 6) == {"x": 6, "y": 7}
    assert run(app, "shift", point={"x": 1}, by=10) == {"x": 11, "y": 10}
    assert run(app, "shift", {"x": 0, "y": 0}) == {"x": 1, "y": 1}
    with pytest.raises(TaskPluginTriggerError, match="Error while building the model for 'point'") as caught:
        run(app, "shift", x="not a number")
    assert isinstance(caught.value.kwargs["error"], ValueError)
    assert caught.value.kwargs["plugin"] == "AsyncPydanticWrapperPlugin"


def test_time_limits():
    app = make_app()

    @app.task(max_time=0.1)
    async def slow():
        await anyio.sleep(5)

    @app.task(max_time=0.1)
    def blocking():
        time.sleep(0.5)

    started = time.monotonic()
    with pytest.raises(TaskTimeLimitError, match="Time limit exceeded for task slow: 0.1 seconds") as caught:
        run(app, "slow")
    assert caught.value.thread_done is None and time.monotonic() - started < 2
    schema = app.tasks["blocking"]
    executor = AsyncTaskExecutor(schema, TaskPrioritySchema(0, uuid.uuid4(), "blocking", [], {}))

    async def main():
        began = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            await executor.execute()
        # failed on time, while the thread still runs (the worker watches its done event)
        assert time.monotonic() - began < 0.4
        return caught.value.thread_done, caught.value.thread_done.is_set()

    done, done_at_failure = anyio.run(main)
    assert done_at_failure is False and done.wait(5)


def test_async_decode_and_teardown_after_decode():
    app = make_app()
    closed: list[str] = []

    def resource():
        yield "r"
        closed.append("closed")

    async def decode(result):
        await asyncio.sleep(0)
        return {"result": result, "closed yet": bool(closed)}

    from qtasks import Depends

    @app.task(decode=decode)
    async def uses(dep=Depends(resource)):
        return dep

    assert run(app, "uses") == {"result": "r", "closed yet": False}
    assert closed == ["closed"]
