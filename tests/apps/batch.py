"""Tasks the batch-job tests map over (``task.map`` and its kin)."""

from __future__ import annotations

import time
from collections import Counter

import anyio
from pydantic import BaseModel

import qtasks.asyncio
from qtasks import Depends, QueueTasks
from qtasks.middlewares import TaskMiddleware
from qtasks.plugins import AsyncState

app = QueueTasks(name="batch")

RUNS: Counter[object] = Counter()
"""Runs per argument of ``flaky`` (the tasks run in the test's process, on InProcessStack)."""


@app.task
def square(x: int) -> int:
    return x * x


@app.task
async def async_square(x: int) -> int:
    await anyio.sleep(0)
    return x * x


@app.task
def power(base: int, exponent: int = 2) -> int:
    return base**exponent


@app.task
def fail_on(x: int, bad: int = 7) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x


@app.task
async def later_first(x: int, total: int = 40) -> int:
    """Later items finish first: the results come back out of input order."""
    await anyio.sleep(0.002 * (total - x))
    return x


@app.task
async def slow(x: int) -> int:
    await anyio.sleep(0.05)
    return x


@app.task
def blocking(x: int) -> int:
    time.sleep(0.01)
    return x


@app.task(retry=2)
def flaky(x: int) -> int:
    """Fails the first time it sees each argument; the retry succeeds."""
    RUNS[x] += 1
    if RUNS[x] == 1:
        raise RuntimeError(f"first run of {x}")
    return x


def offset() -> int:
    return 1000


@app.task
def with_dependency(x: int, base: int = Depends(offset)) -> int:
    return base + x


class Tally(AsyncState):
    pass


@app.task
async def tally(x: int, state: Tally) -> int:
    return await state.incr("items")


class AddTen(TaskMiddleware):
    def __call__(self) -> None:
        self.task_executor._args[0] += 10


@app.task(middlewares_before=[AddTen])
def shifted(x: int) -> int:
    return x


class Point(BaseModel):
    x: int
    y: int


@app.task
def point(x: int):  # no return annotation: the pydantic plugin must see the result
    return Point(x=x, y=-x)


aio_app = qtasks.asyncio.QueueTasks(name="batch")
"""The async face of the same queue (its tasks run on ``app``'s workers, under the same names)."""


@aio_app.task(name="async_square")
async def aio_square(x: int) -> int:
    return x * x


@aio_app.task(name="fail_on")
def aio_fail_on(x: int, bad: int = 7) -> int:
    raise AssertionError("runs on the workers of `app`")
