"""Tasks the benchmarks run; importable by worker processes and by multiprocessing.Pool."""

from __future__ import annotations

from qtasks import QueueTasks

app = QueueTasks(name="bench")


@app.task
async def noop(i: int) -> int:
    return i


def burn(n: int) -> int:
    """Pure-Python CPU work: ``n`` rounds of integer arithmetic."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


@app.task(name="burn")
def burn_task(n: int) -> int:
    return burn(n)


@app.task(name="noop_sync")
def noop_sync(i: int) -> int:
    return i


def identity(i: int) -> int:
    """What ``noop`` does, for multiprocessing.Pool."""
    return i
