"""Apps for the test kit's tests: a fresh one per test (``make(face)``), as a user's app would be."""

from __future__ import annotations

import time
import uuid
from typing import Any

import qtasks.asyncio
from qtasks import Depends, QueueTasks
from qtasks.middlewares import TaskMiddleware
from qtasks.plugins.states import AsyncState


def settings() -> dict[str, str]:
    return {"greeting": "User"}


class Visits(AsyncState):
    pass


class Tag(TaskMiddleware):
    def __call__(self) -> None:
        self.task_executor._kwargs.setdefault("tag", "from middleware")


def make(face: str) -> Any:
    kind = QueueTasks if face == "sync" else qtasks.asyncio.QueueTasks
    app = kind(name=f"kit-{face}-{uuid.uuid4().hex[:6]}")
    failures: dict[str, int] = {}

    @app.task(name="test")
    def greet(id: int, config: dict[str, str] = Depends(settings)) -> str:
        return f"{config['greeting']} {id} saved"

    @app.task(name="error_task")
    def error_zero() -> float:
        return 1 / 0

    @app.task(name="slow")
    def slow(seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    @app.task(name="flaky", retry=2)
    def flaky(key: str) -> str:
        failures[key] = failures.get(key, 0) + 1
        if failures[key] < 3:
            raise ConnectionError(f"attempt {failures[key]}")
        return f"ok after {failures[key]}"

    @app.task(name="tagged", middlewares_before=[Tag])
    def tagged(tag: str = "none") -> str:
        return tag

    @app.task(name="visit")
    async def visit(state: Visits) -> int:
        await state.incr("visits")
        return int(await state.get("visits"))

    return app
