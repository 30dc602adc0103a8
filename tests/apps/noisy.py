"""Tasks that print and log, for the logging tests."""

from __future__ import annotations

from qtasks import QueueTasks

app = QueueTasks(name="noisy")


@app.task
def shout(index, width=300):
    print(f"line-{index}-" + "x" * width + "-end")
    return index


@app.task(echo=True)
def chatty(self, text):
    self.ctx.get_logger().warning("chatty says %s", text)
    return text
