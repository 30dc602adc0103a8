"""The app ``qtasks map`` tests run: tasks that show how each input line was called."""

from __future__ import annotations

import os
import time

from qtasks import QueueTasks

app = QueueTasks(name="batch_cli")


@app.task
def describe(*args, **kwargs):
    """What the call was: its positional and keyword arguments."""
    return {"args": list(args), "kwargs": kwargs}


@app.task
def add(a, b=0):
    return a + b


@app.task
def fail_if(value, bad):
    if value == bad:
        raise ValueError(f"bad value {value}")
    return value


@app.task
def slow_square(value, seconds=0.05):
    time.sleep(seconds)
    return value * value


@app.task
def whoami(value):
    return [value, os.getpid()]


@app.task
def as_bytes(text):
    """A result JSON cannot hold."""
    return text.encode()
