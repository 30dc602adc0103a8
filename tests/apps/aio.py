"""The async-flavour app: the same engine behind ``qtasks.asyncio.QueueTasks``."""

from __future__ import annotations

import os

import anyio

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="tests-async")


@app.task(name="echo")
async def echo(value):
    await anyio.sleep(0)
    return value


@app.task
def sync_pid():
    return os.getpid()


@app.task
async def boom():
    raise RuntimeError("async boom")
