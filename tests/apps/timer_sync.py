"""The timer test app (sync flavour), and a timer process for it.

The worker serves ``tests.apps.timer_sync:app``; ``python -m tests.apps.timer_sync`` runs a
``SyncTimer`` that enqueues ``stamp(path)`` on the trigger its options describe (see
``tests.apps.timer_main``). ``stamp`` appends its own task uuid to ``path``, so a test sees
which fires ran, and how often.
"""

from __future__ import annotations

from qtasks import QueueTasks

app = QueueTasks(name="tests-timers")


@app.task(echo=True)
def stamp(self, path):
    with open(path, "a") as handle:
        handle.write(f"{self.ctx.task_uuid}\n")
    return str(self.ctx.task_uuid)


if __name__ == "__main__":
    from tests.apps.timer_main import main

    main(app, "sync")
