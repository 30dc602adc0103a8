"""One of two projects that both build ``QueueTasks()`` with the default name."""

from qtasks import QueueTasks

app = QueueTasks()


@app.task
def alpha(value):
    return f"alpha {value}"
