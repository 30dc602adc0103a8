"""Send work to ``examples/main.py`` (or to ``qtasks -A examples.app:app run``)."""

from qtasks import QueueTasks

app = QueueTasks(name="example")

task = app.add_task("echo", "Hello", timeout=5)
print(task.status, task.returning)
print(app.add_task("add", 1, 2, 3.5, timeout=5).returning)
