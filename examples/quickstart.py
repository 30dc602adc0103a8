"""A local batch job on the embedded default: no daemon, no server.

    python examples/quickstart.py

``app.serving(processes=2)`` starts two worker processes (and a broker, since none
is running) for the duration of the block; tasks go through the same broker and
workers a production deployment uses.
"""

import asyncio

from qtasks import QueueTasks

app = QueueTasks(name="quickstart")


@app.task
def square(x: int) -> int:
    return x * x


@app.task(priority=0)
async def greet(name: str) -> str:
    await asyncio.sleep(0.01)
    return f"Hello, {name}!"


@app.task
def explode() -> None:
    raise RuntimeError("this task fails on purpose")


if __name__ == "__main__":
    with app.serving(processes=2):
        print(greet.add_task("world", timeout=10).returning)
        squares = square.map(range(100_000))  # as multiprocessing.Pool.map: in input order
        print("sum of 100,000 squares:", sum(squares))
        results = app.add_tasks([square(i) for i in range(10)], timeout=30)
        print("squares:", [task.returning for task in results])
        failed = explode.add_task(timeout=10)
        print("explode:", failed.status, "-", failed.traceback.strip().splitlines()[-1])
