"""The app the dashboard's browser test serves: a slow task to watch, a task that fails the
first time and succeeds when run again, and a generator whose steps a task page shows.

``flaky(directory, key)`` keeps its memory in a file: the first run of a key creates
``directory/key`` and fails; any later run (a retry) finds the file and succeeds.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from qtasks import QueueTasks

app = QueueTasks(name="dashboard-demo")


@app.task
async def slow_echo(text: str, seconds: float) -> str:
    await anyio.sleep(seconds)
    return text


@app.task
def flaky(directory: str, key: str) -> str:
    marker = Path(directory) / key
    if not marker.exists():
        marker.touch()
        raise ValueError(f"{key}: the first attempt fails on purpose")
    return f"{key}: the second attempt succeeded"


@app.task
def countdown(n: int):  # type: ignore[no-untyped-def]
    for i in range(n, 0, -1):
        yield i


if __name__ == "__main__":  # a timer for the demo: python -m tests.apps.dashboard (the broker from $QTASKS_BROKER_URL)
    from apscheduler.triggers.interval import IntervalTrigger

    from qtasks.timers import SyncTimer

    timer = SyncTimer(app)
    timer.add_task("tick", 0.2, task_name="slow_echo", trigger=IntervalTrigger(seconds=30))
    timer.run_forever()
