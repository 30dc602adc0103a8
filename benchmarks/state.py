"""State benchmark: operations per second against the state actor from 2 processes, and latency.

    python benchmarks/state.py [--ops 20000] [--concurrency 64]

Starts the broker daemon (the state actor lives beside it) and two client processes
that each run ``--ops`` ``incr`` operations on one shared key, ``--concurrency`` at a
time (the way tasks of two worker processes would); then times 1,000 sequential
operations from one process. The counter must equal the sum of all increments.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qtasks import QueueTasks  # noqa: E402
from qtasks.plugins import AsyncState, SyncState  # noqa: E402
from tests.support import popen, read_line_matching, stop_process  # noqa: E402


class Hits(AsyncState):
    pass


class SyncHits(SyncState):
    pass


def hammer(url: str, ops: int, concurrency: int, start: multiprocessing.Event, results: multiprocessing.Queue) -> None:
    async def main() -> float:
        app = QueueTasks(name="bench", broker_url=url)
        state = Hits(app)
        await state.get("warm")
        start.wait(30)
        per_worker = ops // concurrency

        async def worker() -> None:
            for _ in range(per_worker):
                await state.incr("hits")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - began
        app.close()
        return took

    results.put(asyncio.run(main()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=20_000, help="operations per process")
    parser.add_argument("--concurrency", type=int, default=64, help="operations in flight per process")
    args = parser.parse_args()
    broker = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--log-level",
                    "WARNING"], stdout=subprocess.PIPE)
    try:
        url = read_line_matching(broker, r"listening at (\S+)", 20).group(1)
        ctx = multiprocessing.get_context("fork")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=hammer, args=(url, args.ops, args.concurrency, start, results))
                 for _ in range(2)]
        for proc in procs:
            proc.start()
        time.sleep(1.0)  # let both connect and warm up before the common start
        began = time.perf_counter()
        start.set()
        took = [results.get(timeout=300) for _ in procs]
        wall = time.perf_counter() - began
        for proc in procs:
            proc.join(30)
        done = (args.ops // args.concurrency) * args.concurrency * 2
        app = QueueTasks(name="bench", broker_url=url)
        counter = SyncHits(app)
        total = asyncio.run(Hits(app).get("hits"))
        assert total == done, f"counter {total} != {done} increments"
        print(f"state ops/s from 2 processes, {args.concurrency} in flight each: {done / wall:,.0f} "
              f"({done} incr of one key; per process {', '.join(f'{args.ops / t:,.0f}' for t in took)}); "
              f"counter exact: {total}")
        samples = []
        for i in range(1000):
            began = time.perf_counter()
            counter.set("latency", i)
            samples.append(time.perf_counter() - began)
        samples.sort()
        print(f"sequential state op round trip (SyncState.set): p50 {samples[500] * 1e3:.3f} ms, "
              f"p99 {samples[990] * 1e3:.3f} ms")
        app.close()
    finally:
        stop_process(broker)


if __name__ == "__main__":
    main()
