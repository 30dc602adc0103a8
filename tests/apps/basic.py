"""The app most engine tests run: plain tasks plus tasks that inject faults from inside.

Fault tasks are picked by name, as in celery's smoke-test app: they kill their own
process (SIGKILL, os._exit) or wait to be killed by the test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import anyio

from qtasks import QueueTasks

app = QueueTasks(name="tests")


@app.task
def echo(value):
    return value


@app.task(name="add", priority=2, description="adds", tags=["math"], flavour="plain")
def add(a, b=0):
    return a + b


@app.task
async def async_echo(value):
    await anyio.sleep(0)
    return value


@app.task
def fail(message):
    raise ValueError(message)


@app.task
def whoami(delay=0.0):
    time.sleep(delay)
    return os.getpid()


@app.task
async def nap(seconds, value=None):
    await anyio.sleep(seconds)
    return value


@app.task
def record(path, label):
    """Append ``label`` to the file at ``path`` (execution order across tasks)."""
    with open(path, "a") as handle:
        handle.write(f"{label}\n")
    return label


@app.task
def wait_for_file(path, timeout=30.0):
    """Block (in a worker thread) until ``path`` exists; for holding a slot busy."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)
    return "released"


@app.task
async def pid_then_hang(pid_file, done_marker):
    """First delivery: write our pid and hang until killed. Later deliveries: succeed."""
    marker = Path(done_marker)
    if marker.exists():
        return os.getpid()
    marker.write_text("first attempt started")
    Path(pid_file).write_text(str(os.getpid()))
    await anyio.sleep(60)
    return "not killed"


@app.task
def kill_self(how="sigkill"):
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)


@app.task
def unpackable():
    return object()


@app.task
async def mark_then_nap(marker, seconds, value=None):
    """Create ``marker`` once running (so a test knows it started), then sleep."""
    Path(marker).touch()
    await anyio.sleep(seconds)
    return value


@app.task
async def nap_then_mark(seconds, marker):
    """Sleep, then append a line to ``marker`` (how many times it ran, and that it finished)."""
    await anyio.sleep(seconds)
    with open(marker, "a") as handle:
        handle.write("ran\n")
    return "done"


@app.task
def retry_later(marker, delay):
    """The first run asks to run again after ``delay`` seconds; the second returns when it ran."""
    from qtasks import Retry

    if not os.path.exists(marker):
        Path(marker).write_text(str(time.time()))
        raise Retry(delay=delay)
    return time.time()
