"""A task for the batch job in the README: ``qtasks -A examples.batch:app map stats lines.jsonl -o out.jsonl``."""

import time

from qtasks import QueueTasks

app = QueueTasks(name="batch-example")


@app.task
def stats(text: str, top: int = 1) -> dict[str, object]:
    """How many words ``text`` has, and its ``top`` longest."""
    words = text.split()
    return {"words": len(words), "longest": sorted(words, key=len, reverse=True)[:top]}


@app.task
def square(x: float, seconds: float = 0.0) -> float:
    """``x * x``, after ``seconds`` of sleep (long enough to try Ctrl+C and ``--resume``)."""
    time.sleep(seconds)
    return x * x
