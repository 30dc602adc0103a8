"""The broker core's routing cost per task, in-process (no sockets, no workers): what telemetry adds.

    python benchmarks/routing_cost.py [--tasks 100000] [--batch 1000] [--repeat 7] [--scraper URL]

Drives a ``BrokerCore`` as its socket loop does: one worker with ``batch`` slots; per batch a
SUBMIT of ``batch`` no-op envelopes, the DISPATCH it causes, a RESULT of every delivery. The
messages are built before the clock starts, so the figure is routing alone: submit, queue,
dispatch, in-flight table, result, storage, (telemetry). The clock is the process's CPU time
(every thread of it), so other programs on a shared machine do not count. Prints tasks per
CPU-second per repetition, the best and the median. The end-to-end benchmark (``engine.py``) measures the same code
behind sockets and processes, where noise on a shared machine hides differences of a few %.

Run it in two trees (before/after a change) alternately and compare the best figures. With
``--metrics``, the core also serves ``/metrics`` (``broker_daemon.metrics``) on 127.0.0.1 and a
separate process scrapes it in a loop the whole time. ``--telemetry-cost`` alternates, in this
one process, runs with the real telemetry and runs with a stand-in that does nothing, and
prints both: the difference is what telemetry costs routing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker_daemon.core import BrokerCore  # noqa: E402
from qtasks.protocol import (  # noqa: E402
    Dispatch,
    Ready,
    Result,
    Submit,
    TaskEnvelope,
    TaskOutcome,
    pack_arguments,
    pack_value,
)

SCRAPER = """
import sys, urllib.request
while True:
    urllib.request.urlopen(sys.argv[1]).read()
"""


class NoTelemetry:
    """Takes every telemetry call and does nothing (``--telemetry-cost``)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def one_run(tasks: int, batch: int, metrics: bool, telemetry: bool = True) -> float:
    """Tasks routed per CPU-second of this process."""
    core = BrokerCore(result_ttl=0)
    if not telemetry:
        core.telemetry = NoTelemetry()  # type: ignore[assignment]
    scraper = server = None
    if metrics:
        from broker_daemon.metrics import MetricsServer

        server = MetricsServer(core, "127.0.0.1", 0)
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, server.url])
    try:
        core.handle(b"w", Ready("bench", batch, 1, "host"))
        core.flush()
        payload, returning = pack_arguments("noop", [1], {}), pack_value(None)
        submits = [Submit(n, None, [TaskEnvelope(os.urandom(16), "noop", "bench", 0, time.time(), payload, {})
                                    for _ in range(batch)]) for n in range(tasks // batch)]
        results = [Result([TaskOutcome(e.uuid, 1, "success", returning, None, 0.0, {}) for e in s.envelopes])
                   for s in submits]
        handle, flush = core.handle, core.flush
        started = time.process_time()
        for submit, result in zip(submits, results, strict=True):
            handle(b"c", submit)
            out: list[tuple[bytes, Any]] = flush()
            assert sum(len(m.deliveries) for _, m in out if isinstance(m, Dispatch)) == batch
            handle(b"w", result)
            flush()
        took = time.process_time() - started
    finally:
        if scraper is not None:
            scraper.kill()
            scraper.wait()
        if server is not None:
            server.close()
    return (tasks // batch) * batch / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--metrics", action="store_true", help="serve /metrics and scrape it in a loop meanwhile")
    parser.add_argument("--telemetry-cost", action="store_true",
                        help="alternate runs with telemetry and with a stand-in doing nothing")
    args = parser.parse_args()
    if args.telemetry_cost:
        figures: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for telemetry in (True, False):
                figures[telemetry].append(one_run(args.tasks, args.batch, False, telemetry))
        for telemetry, found in figures.items():
            print(f"{'with' if telemetry else 'without':7} telemetry: best {max(found):.0f} tasks/s, "
                  f"median {statistics.median(found):.0f} tasks/s over {len(found)} runs")
        return
    rates = []
    for _ in range(args.repeat):
        rates.append(one_run(args.tasks, args.batch, args.metrics))
        print(f"{rates[-1]:9.0f} tasks/s", flush=True)
    print(f"best {max(rates):.0f} tasks/s, median {statistics.median(rates):.0f} tasks/s over {len(rates)} runs")


if __name__ == "__main__":
    main()
