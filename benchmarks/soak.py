"""Soak: 50,000 no-op tasks through the daemon and `qtasks run --processes 2`, RSS after each round.

    python benchmarks/soak.py [--tasks 50000] [--rounds 10] [--result-ttl 1]

Ended records expire after --result-ttl seconds; each round waits for that, then samples the
resident memory of the broker and of both worker processes. Flat after the first rounds
(warm-up: allocator pools, caches) is the promise (RELIABILITY R20).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qtasks import QueueTasks  # noqa: E402
from tests.support import popen, read_line_matching, stop_process, wait_for, wait_for_workers  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--result-ttl", default="1")
    args = parser.parse_args()
    broker = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--log-level", "WARNING",
                    "--result-ttl", args.result_ttl], stdout=subprocess.PIPE)
    try:
        url = read_line_matching(broker, r"listening at (\S+)", 20).group(1)
        workers = popen([sys.executable, "-m", "qtasks", "-A", "benchmarks.apps:app", "run", "--processes", "2",
                         "--broker", url, "--log-level", "WARNING"])
        try:
            app = QueueTasks(name="bench", broker_url=url)
            pids = sorted(wait_for_workers(app, 2))
            per_round = args.tasks // args.rounds
            print(f"{'round':>5} {'tasks/s':>9} {'broker MB':>10} " + " ".join(f"{'worker ' + str(p):>13}"
                                                                         for p in pids))
            for number in range(1, args.rounds + 1):
                started = time.perf_counter()
                results = app.add_tasks([("noop", [i], {}) for i in range(per_round)], timeout=600)
                rate = per_round / (time.perf_counter() - started)
                assert all(t is not None and t.status == "success" for t in results)
                wait_for(lambda: app.broker_stats()["records"] == 0, 60, "the records to expire")
                print(f"{number:>5} {rate:>9,.0f} {rss_mb(broker.pid):>10.1f} "
                      + " ".join(f"{rss_mb(p):>13.1f}" for p in pids), flush=True)
            app.close()
        finally:
            stop_process(workers)
    finally:
        stop_process(broker)


if __name__ == "__main__":
    main()
