"""What watching the broker costs routing: memory-mode throughput with and without a scraper.

    python benchmarks/metrics_cost.py [--tasks 20000] [--batch 1000] [--rounds 3] [--modes plain,scraped]

Each round starts a fresh broker (in memory) and two worker processes, then runs the pipelined
throughput of ``benchmarks/engine.py`` (a) once per mode, modes alternating so drift on a
shared machine hits both alike:

  plain     ``qtasks-broker`` as is (``--metrics`` too when the broker has it, nobody scraping)
  scraped   ``--metrics 127.0.0.1:0`` and a thread fetching /metrics in a loop the whole time
  status    a thread asking ``OpsClient.status()`` in a loop the whole time

Prints every figure and the median per mode: tasks/s, and the broker process's CPU time per task
(user + system, from /proc), which other programs on a shared machine disturb far less than
wall-clock throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.engine import start_broker, throughput, workers_for  # noqa: E402
from tests.support import read_line_matching, stop_process  # noqa: E402


def _has_metrics() -> bool:
    return (ROOT / "broker_daemon" / "metrics.py").exists()


def _loop(action: Callable[[], object], stop: threading.Event, counter: list[int]) -> None:
    while not stop.is_set():
        action()
        counter[0] += 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(mode: str, tasks: int, batch: int, concurrency: int) -> tuple[float, float, int]:
    """(pipelined tasks/s, broker CPU microseconds per task, how many scrapes or status calls ran meanwhile)."""
    extra = ("--metrics", "127.0.0.1:0") if _has_metrics() else ()
    broker, url = start_broker(*extra)
    metrics_url: Optional[str] = None
    if extra:
        metrics_url = read_line_matching(broker, r"metrics at (\S+)", 20).group(1)
    stop, counter = threading.Event(), [0]
    watcher: Optional[threading.Thread] = None
    try:
        workers: subprocess.Popen[str] = workers_for(url, concurrency)
        try:
            if mode == "scraped":
                assert metrics_url is not None, "this tree has no --metrics"
                target = metrics_url
                watcher = threading.Thread(target=_loop, args=(lambda: urllib.request.urlopen(target).read(),
                                                               stop, counter), daemon=True)
            elif mode == "status":
                from qtasks.ops import OpsClient

                client = OpsClient(url)
                watcher = threading.Thread(target=_loop, args=(client.status, stop, counter), daemon=True)
            if watcher is not None:
                watcher.start()
            before = cpu_seconds(broker.pid)
            pipelined, _ = throughput(url, tasks, batch)
            cpu = (cpu_seconds(broker.pid) - before) / (2 * tasks) * 1e6  # throughput() runs the tasks twice
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(10)
            stop_process(workers)
    finally:
        stop_process(broker)
    return pipelined, cpu, counter[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="plain,scraped")
    args = parser.parse_args()
    modes = args.modes.split(",")
    figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for round_ in range(args.rounds):
        for mode in modes:
            rate, cpu, watched = one_run(mode, args.tasks, args.batch, args.concurrency)
            figures[mode].append((rate, cpu))
            print(f"round {round_ + 1} {mode:8} {rate:9.0f} tasks/s  broker CPU {cpu:6.1f} us/task"
                  + (f"  ({watched} requests meanwhile)" if mode != "plain" else ""), flush=True)
    for mode, runs in figures.items():
        print(f"median {mode:8} {statistics.median(r for r, _ in runs):9.0f} tasks/s  broker CPU "
              f"{statistics.median(c for _, c in runs):6.1f} us/task over {len(runs)} runs")


if __name__ == "__main__":
    main()
