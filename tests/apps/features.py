"""Every task feature of issue 4, registered on an app of either flavour by ``define(app)``.

``features_sync.py`` and ``features_async.py`` build the two apps; the tests run the same
scenarios against both. Markers (files) let a test see what ran, where and when.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import anyio
from pydantic import BaseModel

from qtasks import Depends, Retry
from qtasks.executors import AsyncTaskExecutor
from qtasks.middlewares import TaskMiddleware
from qtasks.plugins import AsyncState


def touch(path: str, text: str = "") -> None:
    with open(path, "a") as handle:
        handle.write(text)


class AddOneToFirstArgument(TaskMiddleware):
    async def __call__(self):
        self.task_executor._args[0] += 1


class DoubleTheResult(TaskMiddleware):
    def __call__(self):
        self.task_executor._result *= 2


class CountRuns(TaskMiddleware):
    """Added with app.add_middleware: records every execution it wraps."""

    def __call__(self):
        marker = os.environ.get("QTASKS_TEST_MIDDLEWARE_LOG")
        if marker:
            touch(marker, f"{self.task_executor.task_func.name}\n")


class TaggingExecutor(AsyncTaskExecutor):
    async def after_execute(self) -> None:
        await super().after_execute()
        self._result = {"tagged": self._result, "executor": type(self).__name__}


class User(BaseModel):
    name: str
    age: int


class Attempts(AsyncState):
    pass


def teardown_marker():
    yield "dependency"
    marker = os.environ.get("QTASKS_TEST_TEARDOWN")
    if marker:
        touch(marker, "closed\n")


def define(app: Any) -> None:
    # 1. generators ------------------------------------------------------------------------
    @app.task(generate_handler=lambda value: f"handled {value}")
    def send_back():
        step = yield "INIT"
        return step

    @app.task(generate_handler=lambda value: value + 1)
    def counter(n):
        for i in range(n + 1, n + 6):
            yield i

    async def plus_two(value):
        await anyio.sleep(0)
        return value + 2

    @app.task(generate_handler=plus_two)
    async def async_counter(n):
        for i in range(n + 1, n + 6):
            yield i

    @app.task
    async def slow_steps(count, delay, marker=None):
        for i in range(count):
            yield i
            if marker and i == 1:
                touch(marker)
            await anyio.sleep(delay)

    # 2. echo and ctx --------------------------------------------------------------------------
    @app.task(echo=True, tags=["ctx"])
    async def introspect(self):
        ctx = self.ctx
        metadata = await ctx.get_metadata()
        await ctx.sleep(0.01)
        logger = ctx.get_logger()
        logger.info("introspect ran")
        return {
            "object": type(self).__name__,
            "task_name": ctx.task_name,
            "uuid": str(ctx.task_uuid),
            "status": metadata.status,
            "max_tasks_process": ctx.get_config().max_tasks_process,
            "broker": ctx.get_component("broker") is not None,
            "logger": logger.subname,
            "tags": self.tags,
        }

    @app.task(echo=True)
    def sync_introspect(self, other_uuid):
        self.ctx.sleep(0.01)
        other = self.ctx.get_task(other_uuid)
        return {"object": type(self).__name__, "uuid": str(self.ctx.task_uuid),
                "other": other.returning, "config": self.ctx.get_config().max_tasks_process}

    @app.task
    def double(n):
        return n * 2

    @app.task(echo=True)
    async def parent(self, n):
        child = await self.add_task(n, task_name="double", timeout=10)
        return child.returning + 1

    @app.task(echo=True)
    def sync_parent(self, n):
        child = self.add_task(n, task_name="double", timeout=10)
        return child.returning + 1

    @app.task(echo=True)
    async def gives_up(self):
        self.ctx.cancel("not today")

    @app.task(echo=True)
    async def plugin_failure(self):
        self.ctx.plugin_error(reason="no plugin")

    # 3. cancellation ----------------------------------------------------------------------------
    @app.task
    async def cancellable(started, done, dependency=Depends(teardown_marker)):
        touch(started)
        await anyio.sleep(30)
        touch(done)

    @app.task
    def sync_cancellable(started, seconds, finished=None):
        touch(started)
        time.sleep(seconds)
        if finished:
            touch(finished)
        return "finished anyway"

    @app.task
    def never_runs(marker):
        touch(marker)

    # 4. retries -----------------------------------------------------------------------------------
    @app.task(retry=2)
    async def flaky(key, fail_times, state: Attempts):
        runs = await state.incr(key)
        if runs <= fail_times:
            raise ConnectionError(f"run {runs} failed")
        return runs

    @app.task(retry=3, retry_on_exc=[LookupError])
    async def picky(key, error, state: Attempts):
        runs = await state.incr(key)
        if runs == 1:
            raise {"key": KeyError, "value": ValueError}[error]("first run fails")
        return runs

    @app.task
    async def retry_later(key, delay, state: Attempts):
        runs = await state.incr(key)
        if runs == 1:
            await state.set(f"{key}-first", time.time())
            raise Retry(delay=delay)
        return time.time() - await state.get(f"{key}-first")

    # 5. time limits ------------------------------------------------------------------------------
    @app.task(max_time=0.3)
    async def sleepy(seconds):
        await anyio.sleep(seconds)
        return "woke"

    @app.task(max_time=0.3)
    def blocking(seconds):
        time.sleep(seconds)
        return os.getpid()

    @app.task
    def whoami():
        return os.getpid()

    # 6. decode ------------------------------------------------------------------------------------
    @app.task(decode=lambda result: f"<{result}>")
    def decorated(value):
        return value

    async def async_decode(result):
        await asyncio.sleep(0)
        return {"wrapped": result}

    @app.task(decode=async_decode)
    async def async_decorated(value):
        return value

    @app.task(decode=json.dumps)  # upstream's way: JSON text, read back as the value it encodes
    def as_json(value):
        return value

    @app.task(decode=lambda result: {result})  # a set: not msgpack-native
    def opaque(value):
        return value

    # 7. middlewares and executors ----------------------------------------------------------------
    @app.task(middlewares_before=[AddOneToFirstArgument], middlewares_after=[DoubleTheResult])
    def adjusted(n):
        return n

    @app.task(executor=TaggingExecutor)
    async def executed(value):
        return value

    app.add_middleware(CountRuns, position="after")

    # 10. pydantic ---------------------------------------------------------------------------------
    @app.task
    def create_user(user: User):
        return User(name=user.name.upper(), age=user.age + 1)

    # 9. events --------------------------------------------------------------------------------------
    def record(event):
        def handler(**kwargs):
            log = os.environ.get("QTASKS_TEST_EVENTS")
            if log:
                name = getattr(kwargs.get("task_func"), "name", "")
                touch(log, f"{event} {os.getpid()} {name}\n")

        return handler

    for event in ("starting", "stopping", "worker_running", "worker_stopping", "task_running",
                  "task_success", "task_error", "task_cancel", "task_stopping"):
        getattr(app.events.on, event)()(record(event))
