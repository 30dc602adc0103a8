"""Mistakes a type checker must flag (tests/test_types.py runs mypy on this file and expects each)."""

from __future__ import annotations

from qtasks import QueueTasks, shared_task
from qtasks.asyncio import QueueTasks as AsyncQueueTasks

app = QueueTasks(name="misuse")
aio = AsyncQueueTasks(name="misuse-async")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@aio.task(priority=2)
async def shout(text: str) -> str:
    return text.upper()


@shared_task
def halve(x: float) -> float:
    return x / 2


add("one", 2)  # expect: arg-type
add(1)  # expect: call-arg
text: str = add.add_task(1, 2).returning  # expect: assignment
shout(3)  # expect: arg-type
halve("x")  # expect: arg-type


async def later() -> None:
    task = await shout.add_task("x", timeout=1)
    number: int = task.returning if task is not None and task.returning is not None else 0  # expect: assignment  # noqa: F841
