"""Tasks that attack their own worker: they fork, exit, block the loop, return too much.

The app is built without ``broker_url``: whoever serves it decides where its broker is.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio

from qtasks import QueueTasks
from qtasks.plugins import AsyncState

app = QueueTasks(name="attack")


class Counter(AsyncState):
    pass


@app.task
def echo(value):
    return value


@app.task
async def count(state: Counter):
    return await state.incr("calls")


@app.task(echo=True)
async def parent(self, value):
    child = await self.add_task(value, task_name="echo", timeout=10)
    return child.returning


@app.task(echo=True)
async def look_up(self, uuid):
    task = await self.ctx.get_task(uuid)
    return task.status


@app.task
def big_result(size):
    return "x" * size


@app.task
def fork_and_return():
    """The child, a copy of the worker process, must not carry on as a worker."""
    pid = os.fork()
    if pid == 0:
        return "child"
    return pid


@app.task
def exit_plain(code):
    sys.exit(code)


@app.task
async def exit_async(code):
    await anyio.sleep(0)
    sys.exit(code)


@app.task
def interrupt_plain():
    raise KeyboardInterrupt


@app.task
async def nap(seconds, value=None):
    await anyio.sleep(seconds)
    return value


@app.task
async def hold(directory, seconds):
    """Touch a file of its own in ``directory`` once running (so a test knows), then sleep."""
    Path(directory, f"{os.getpid()}-{os.urandom(4).hex()}").touch()
    await anyio.sleep(seconds)


@app.task
async def block_loop(seconds, marker):
    """Blocks the worker's event loop: heartbeats from the loop stop while it sleeps."""
    with open(marker, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    if len(Path(marker).read_text().split()) == 1:
        time.sleep(seconds)
    return os.getpid()
