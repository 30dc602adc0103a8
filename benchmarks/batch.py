"""Batch-job benchmark: ``task.map`` and a loop of ``add_task`` next to ``multiprocessing.Pool(2)``.

    python benchmarks/batch.py [--items 200000] [--loop 10000] [--big 1000000]

A broker daemon and ``qtasks -A benchmarks.apps:app run --processes N`` with default
settings (as a user starts them) serve every measure. Each baseline runs in the same
run, right before or after what it is compared with (the machine is shared: read the
ratios, not the seconds):

  (d)  N x task.add_task(i) in a loop, then wait_result() on each handle   vs Pool.apply_async + get
  (e1) noop.map(range(N))                                                  vs Pool(2).map
  (e2) 64 x ~50 ms of CPU through map                                      vs Pool(2).map
  (e3) 10,000 x ~1 ms of CPU through map                                   vs Pool(2).map
  (f)  (e1) and (e3) with --processes 8 next to --processes 2, on this machine's cores
  (g)  a 1,000,000-item generator through map: peak RSS of this client and of the broker
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps import burn, identity  # noqa: E402
from benchmarks.engine import calibrate, rss_kb, start_broker  # noqa: E402
from qtasks import QueueTasks  # noqa: E402
from tests.support import popen, stop_process, wait_for_workers  # noqa: E402


def start_workers(url: str, processes: int) -> Any:
    proc = popen([sys.executable, "-m", "qtasks", "-A", "benchmarks.apps:app", "run", "--processes",
                  str(processes), "--broker", url, "--log-level", "WARNING"])
    probe = QueueTasks(name="bench", broker_url=url)
    wait_for_workers(probe, processes)
    probe.close()
    return proc


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def loop_then_wait(app: QueueTasks, count: int) -> None:
    handles = [app.add_task("noop_sync", i) for i in range(count)]
    for i, handle in enumerate(handles):
        assert handle is not None
        done = handle.wait_result(timeout=60)
        assert done is not None and done.returning == i, done


def pool_loop_then_wait(pool: Any, count: int) -> None:
    handles = [pool.apply_async(identity, (i,)) for i in range(count)]
    for i, handle in enumerate(handles):
        assert handle.get(60) == i



class PeakRss:
    """Samples the peak RSS of some processes every 50 ms while it is open."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {label: 0 for label in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for label, pid in self.pids.items():
                self.peak[label] = max(self.peak[label], rss_kb(pid))


def generator(count: int) -> Iterator[int]:
    yield from range(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000, help="items of (e1)")
    parser.add_argument("--loop", type=int, default=10_000, help="add_task calls of (d)")
    parser.add_argument("--big", type=int, default=1_000_000, help="items of the generator of (g)")
    parser.add_argument("--only", default="d,e1,e2,e3,f,g", help="which measures, comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))
    from benchmarks.apps import burn_task, noop

    fifty_ms, one_ms = calibrate(0.050), calibrate(0.001)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; qtasks-broker + "
          "`qtasks run --processes 2` (default settings), loopback TCP; baselines multiprocessing.Pool(2)")
    broker, url = start_broker()
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map(identity, range(10))  # start-up outside the timing, as our workers are already up
    try:
        from benchmarks.apps import app

        app.broker.use_url(url)
        workers = start_workers(url, 2)
        try:
            if "d" in only:
                loop_then_wait(app, 200)
                ours = timed(lambda: loop_then_wait(app, args.loop))
                theirs = timed(lambda: pool_loop_then_wait(pool, args.loop))
                print(f"(d)  {args.loop:,} x add_task(i), then wait_result on each: {args.loop / ours:,.0f} tasks/s; "
                      f"Pool apply_async+get {args.loop / theirs:,.0f}/s   target >= 10,000 tasks/s")
            if "e1" in only:
                items = list(range(args.items))
                ours = timed(lambda: _check(noop.map(items), items))
                theirs = timed(lambda: _check(pool.map(identity, items), items))
                print(f"(e1) noop.map(range({args.items:,})): {args.items / ours:,.0f} items/s; Pool(2).map "
                      f"{args.items / theirs:,.0f} items/s   target >= 100,000 items/s")
            if "e2" in only:
                work = [fifty_ms] * 64
                ours = timed(lambda: burn_task.map(work))
                theirs = timed(lambda: pool.map(burn, work))
                print(f"(e2) 64 x ~50 ms CPU through map: {ours:.3f} s; Pool(2).map {theirs:.3f} s; "
                      f"ratio {ours / theirs:.3f}   target <= 1.05")
            if "e3" in only:
                work = [one_ms] * 10_000
                ours = timed(lambda: burn_task.map(work))
                theirs = timed(lambda: pool.map(burn, work))
                serial = timed(lambda: [burn(n) for n in work])
                print(f"(e3) 10,000 x ~1 ms CPU through map: {ours:.3f} s; Pool(2).map {theirs:.3f} s; "
                      f"ratio {ours / theirs:.3f} (a serial loop: {serial:.3f} s)   target <= 1.10")
            if "g" in only:
                with PeakRss({"client": os.getpid(), "broker": broker.pid}) as peak:
                    done = sum(1 for _ in noop.imap_unordered(generator(args.big)))
                assert done == args.big
                print(f"(g)  a {args.big:,}-item generator through map: peak RSS client "
                      f"{peak.peak['client'] / 1024:.0f} MB, broker {peak.peak['broker'] / 1024:.0f} MB   "
                      "target < 200 MB each")
        finally:
            stop_process(workers)
        if "f" in only:
            rates = {}
            for processes in (2, 8):
                workers = start_workers(url, processes)
                try:
                    small = timed(lambda: _check(noop.map(range(args.items)), list(range(args.items))))
                    cpu = timed(lambda: burn_task.map([one_ms] * 10_000))
                    rates[processes] = (args.items / small, 10_000 / cpu)
                finally:
                    stop_process(workers)
            print(f"(f)  --processes 8 / --processes 2 on {os.cpu_count()} cores: no-op map "
                  f"{rates[8][0] / rates[2][0]:.2f} x ({rates[8][0]:,.0f} vs {rates[2][0]:,.0f} items/s), ~1 ms CPU "
                  f"map {rates[8][1] / rates[2][1]:.2f} x ({rates[8][1]:,.0f} vs {rates[2][1]:,.0f} items/s)   "
                  "target >= 0.9 x")
    finally:
        pool.terminate()
        stop_process(broker)


def _check(results: list[Any], expected: list[Any]) -> None:
    assert results == expected, "results out of order or missing"


if __name__ == "__main__":
    main()
