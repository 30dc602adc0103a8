"""The other project with the default app name: it serves ``beta``, not ``alpha``."""

from qtasks import QueueTasks

app = QueueTasks()


@app.task
def beta(value):
    return f"beta {value}"
