"""A QTasks program a type checker understands: ``mypy --strict examples/typed.py`` passes.

Task objects are generic over the function's parameters and result, so a call with the
wrong arguments is flagged before it runs, and ``Task.returning`` has the function's type.

    python examples/typed.py
"""

from __future__ import annotations

from typing import Optional

from qtasks import QueueTasks
from qtasks.schemas.task import Task

app = QueueTasks(name="typed")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(priority=1, description="greets someone")
async def greet(name: str) -> str:
    return f"Hello, {name}!"


def total_of(tasks: list[Optional[Task[int]]]) -> int:
    return sum(t.returning or 0 for t in tasks if t is not None)


def main() -> None:
    with app.serving(processes=1):
        queued: Task[int] = add.add_task(1, 2)                 # stored, status "new"
        done: Optional[Task[int]] = queued.wait_result(timeout=10)
        assert done is not None and done.returning == 3
        hello = greet.add_task("types", timeout=10)           # the finished Task[str], or None
        print(hello.returning if hello is not None else "did not finish in time")
        results = app.add_tasks([add(i, i) for i in range(10)], timeout=10)
        print("sum of doubles:", total_of(results))


if __name__ == "__main__":
    main()
