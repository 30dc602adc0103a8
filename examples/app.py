"""An app and its tasks: served by ``python examples/main.py`` or ``qtasks -A examples.app:app run``."""

import asyncio

from qtasks import QueueTasks

app = QueueTasks(name="example")


@app.task
async def echo(text: str) -> str:
    await asyncio.sleep(0)
    return text


@app.task(priority=5, description="sums numbers", tags=["math"])
def add(*numbers: float) -> float:
    return sum(numbers)
