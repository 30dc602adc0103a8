"""A long-running server: ``python examples/main.py`` serves tasks until Ctrl+C.

With nothing listening at the broker URL (``$QTASKS_BROKER_URL``, default
tcp://127.0.0.1:5555) it hosts the broker itself; run ``examples/client.py``
from another terminal to send it work.
"""

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


app.run_forever(num_workers=2)
