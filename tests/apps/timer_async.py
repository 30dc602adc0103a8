"""The timer test app (async flavour, same name and task as ``timer_sync``), and an ``AsyncTimer`` for it."""

from __future__ import annotations

from pathlib import Path

from qtasks.asyncio import QueueTasks

app = QueueTasks(name="tests-timers")


@app.task(echo=True)
async def stamp(self, path):
    with Path(path).open("a") as handle:
        handle.write(f"{self.ctx.task_uuid}\n")
    return str(self.ctx.task_uuid)


if __name__ == "__main__":
    from tests.apps.timer_main import main

    main(app, "async")
