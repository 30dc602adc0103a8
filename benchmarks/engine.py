"""Engine benchmark: the broker daemon and `qtasks ... run --processes 2` on this machine.

    python benchmarks/engine.py [--tasks 20000] [--batch 1000] [--concurrency 64] [--data-dir DIR]

Prints, from one run:
  (a) throughput: N no-op tasks submitted in batches, every result collected (tasks/s)
  (b) latency: 1,000 sequential single tasks, add_task(..., timeout=5) round trips (p50, p99)
  (a) and (b) run twice: with the broker in memory, then with a data directory (SQLite)
  (r13) the broker's memory per queued task, 100,000 queued and no worker
  (c) 64 CPU-bound tasks of ~50 ms: wall time next to multiprocessing.Pool(2).map of the same
      function, measured in the same run (the machine is shared: compare ratios, not seconds)
Baselines run in the same process and the same minute as what they are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qtasks.asyncio  # noqa: E402
from benchmarks.apps import burn  # noqa: E402
from qtasks import QueueTasks  # noqa: E402
from tests.support import popen, read_line_matching, stop_process, wait_for_workers  # noqa: E402


def calibrate(target: float = 0.050) -> int:
    """Rounds of ``burn`` that take about ``target`` seconds here."""
    n = 20_000
    while True:
        started = time.perf_counter()
        burn(n)
        took = time.perf_counter() - started
        if took > 0.01:
            return int(n * target / took)
        n *= 4


def throughput(url: str, tasks: int, batch: int) -> tuple[float, float]:
    """(pipelined, one batch at a time) tasks/s with every result collected."""
    from benchmarks.apps import noop

    async def pipelined() -> float:
        app = qtasks.asyncio.QueueTasks(name="bench", broker_url=url)
        calls = [noop(i) for i in range(tasks)]
        started = time.perf_counter()
        results = await asyncio.gather(*(app.add_tasks(calls[i:i + batch], timeout=300)
                                         for i in range(0, tasks, batch)))
        took = time.perf_counter() - started
        done = sum(1 for chunk in results for task in chunk if task is not None and task.status == "success")
        assert done == tasks, f"only {done} of {tasks} tasks succeeded"
        app.close()
        return tasks / took

    app = QueueTasks(name="bench", broker_url=url)
    started = time.perf_counter()
    done = 0
    for i in range(0, tasks, batch):
        results = app.add_tasks([noop(j) for j in range(i, min(i + batch, tasks))], timeout=300)
        done += sum(1 for task in results if task is not None and task.status == "success")
    sequential = tasks / (time.perf_counter() - started)
    assert done == tasks
    app.close()
    return asyncio.run(pipelined()), sequential


def latency(url: str, count: int = 1000) -> tuple[float, float]:
    app = QueueTasks(name="bench", broker_url=url)
    for i in range(100):  # warm up connections, caches and the allocator
        app.add_task("noop", i, timeout=5)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        task = app.add_task("noop", i, timeout=5)
        samples.append(time.perf_counter() - started)
        assert task is not None and task.returning == i
    app.close()
    samples.sort()
    return samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99)] * 1e3


def cpu_bound(url: str, rounds: int, count: int = 64) -> tuple[float, float]:
    """(qtasks wall time, multiprocessing.Pool(2).map wall time) for the same work."""
    app = QueueTasks(name="bench", broker_url=url)
    started = time.perf_counter()
    results = app.add_tasks([("burn", [rounds], {}) for _ in range(count)], timeout=600)
    ours = time.perf_counter() - started
    assert all(task is not None and task.status == "success" for task in results)
    app.close()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(burn, [1000, 1000])  # start-up outside the timing, as our workers are already up
        started = time.perf_counter()
        pool.map(burn, [rounds] * count, chunksize=1)
        pool_took = time.perf_counter() - started
    return ours, pool_took


def workers_for(url: str, concurrency: int) -> subprocess.Popen[str]:
    proc = popen([sys.executable, "-m", "qtasks", "-A", "benchmarks.apps:app", "run", "--processes", "2",
                  "--concurrency", str(concurrency), "--broker", url, "--log-level", "WARNING"])
    probe = QueueTasks(name="bench", broker_url=url)
    wait_for_workers(probe, 2)
    probe.close()
    return proc


def start_broker(*extra: str) -> tuple[subprocess.Popen[str], str]:
    broker = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--log-level", "WARNING",
                    *extra], stdout=subprocess.PIPE)
    return broker, read_line_matching(broker, r"listening at (\S+)", 20).group(1)


def engine_figures(args: argparse.Namespace, *broker_args: str) -> tuple[float, float, float, float]:
    """(a) pipelined and one-batch-at-a-time throughput, (b) p50 and p99, with a broker started so."""
    broker, url = start_broker(*broker_args)
    try:
        workers = workers_for(url, args.concurrency)
        try:
            pipelined, sequential = throughput(url, args.tasks, args.batch)
            p50, p99 = latency(url)
        finally:
            stop_process(workers)
    finally:
        stop_process(broker)
    return pipelined, sequential, p50, p99


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def queued_memory(count: int, *broker_args: str) -> float:
    """Bytes of the broker's RSS per queued no-op task (no worker takes them)."""
    from benchmarks.apps import noop

    broker, url = start_broker(*broker_args)
    try:
        app = QueueTasks(name="bench", broker_url=url)
        app.add_task("noop", -1)
        before = rss_kb(broker.pid)
        for start in range(0, count, 5000):
            app.add_tasks([noop(i) for i in range(start, min(start + 5000, count))])
        grown = rss_kb(broker.pid) - before
        app.close()
    finally:
        stop_process(broker)
    return grown * 1024 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64, help="slots per worker process for (a), (b)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of (c)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="where the durable run keeps its data (default: a fresh temporary directory)")
    parser.add_argument("--queued", type=int, default=100_000, help="queued tasks for the memory figure")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; qtasks-broker + "
          "`qtasks run --processes 2`, loopback TCP")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or os.path.join(scratch, "data")
        memory = engine_figures(args)
        durable = engine_figures(args, "--data-dir", data_dir)
    for label, (pipelined, sequential, p50, p99) in (("memory", memory), ("--data-dir", durable)):
        print(f"(a) {label:10} throughput, {args.tasks} no-op tasks in batches of {args.batch}, "
              f"{args.concurrency} slots/process, all results collected: {pipelined:,.0f} tasks/s (batches "
              f"in flight together), {sequential:,.0f} tasks/s (one batch at a time)")
        print(f"(b) {label:10} latency, 1,000 sequential add_task(timeout=5) round trips: "
              f"p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"    targets: memory (a) >= 15,000, (b) p50 <= 1 ms, p99 <= 5 ms; --data-dir (a) >= 10,000 and "
          f">= 0.6 x memory: {durable[0] / memory[0]:.2f} x; (b) p50 <= 1.5 x memory: {durable[2] / memory[2]:.2f} x")
    with tempfile.TemporaryDirectory() as scratch:
        per_task = queued_memory(args.queued)
        per_task_durable = queued_memory(args.queued, "--data-dir", os.path.join(scratch, "data"))
    print(f"(r13) broker RSS per queued no-op task, {args.queued:,} queued, no worker: {per_task:,.0f} bytes "
          f"in memory, {per_task_durable:,.0f} bytes with --data-dir   target <= 1,024")
    broker, url = start_broker()
    try:
        rounds = calibrate()
        workers = workers_for(url, args.concurrency)
        try:
            crowded = [cpu_bound(url, rounds) for _ in range(args.rounds)]
        finally:
            stop_process(workers)
        # CPU-bound work is run the way Pool runs it: one task at a time per process.
        workers = workers_for(url, 1)
        try:
            pairs = [cpu_bound(url, rounds) for _ in range(args.rounds)]
        finally:
            stop_process(workers)
    finally:
        stop_process(broker)
    ratios = [ours / pool for ours, pool in pairs]
    ours, pool = pairs[ratios.index(sorted(ratios)[len(ratios) // 2])]
    print(f"(c) 64 CPU-bound tasks of ~50 ms, --concurrency 1: qtasks {ours:.3f} s, "
          f"multiprocessing.Pool(2).map {pool:.3f} s, ratio {ours / pool:.3f} (median of "
          f"{args.rounds}: {', '.join(f'{r:.3f}' for r in ratios)})   target <= 1.10")
    crowded_ratios = [o / p for o, p in crowded]
    print(f"    with {args.concurrency} slots/process (threads sharing one GIL, no rebalancing): "
          f"ratio {statistics.median(crowded_ratios):.3f} (median of {args.rounds})")


if __name__ == "__main__":
    main()
