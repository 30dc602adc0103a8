"""The app the operations tests watch (``qtasks status``, ``inspect``, metrics): tasks that succeed,
fail with known exception types, yield steps, or hold a slot until a file appears."""

from __future__ import annotations

import os
import time

from qtasks import QueueTasks

app = QueueTasks(name="tests-ops")


@app.task
def add(a, b=0):
    return a + b


@app.task
def boom(message):
    raise ValueError(message)


@app.task
def missing(key):
    return {}[key]


@app.task(generate_handler=lambda value: value * 10)
def steps(n):
    for i in range(n):
        yield i


@app.task
def hold(path, timeout=30.0):
    """Block until ``path`` exists: keeps a slot busy for as long as a test needs."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)
    return "released"
