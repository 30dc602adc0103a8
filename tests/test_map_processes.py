"""``task.map`` where real processes matter: Ctrl+C in the mapping program, and memory that stays
flat while a large generator goes through a broker daemon and worker processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from qtasks import QueueTasks
from tests.support import broker_process, popen, read_line_matching, stop_process, wait_for, wait_for_workers

APP = "tests.apps.batch:app"


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


MAPS_SLOWLY = textwrap.dedent("""
    import sys
    from tests.apps.batch import app, slow
    app.broker.use_url(sys.argv[1])
    for index, result in enumerate(slow.imap(range(100_000), chunksize=1, window=20)):
        if index == 0:
            print("first result", flush=True)
""")


def test_ctrl_c_in_the_mapping_program_cancels_what_is_queued():
    with broker_process() as (url, _), worker_process_of(url):
        probe = QueueTasks(name="batch", broker_url=url)
        try:
            wait_for_workers(probe, 1)
            mapping = popen([sys.executable, "-c", MAPS_SLOWLY, url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
            try:
                read_line_matching(mapping, "first result", 60)
                mapping.send_signal(signal.SIGINT)
                assert mapping.wait(30) != 0  # KeyboardInterrupt ends it
                assert "KeyboardInterrupt" in mapping.stderr.read()
            finally:
                stop_process(mapping)

            def drained() -> dict | None:
                stats = probe.broker_stats()
                return stats if stats["in_flight"] == 0 and not any(stats["queues"].values()) else None

            stats = wait_for(drained, 30, "the map's queued chunks to be cancelled")
            assert stats["totals"].get("cancel", 0) >= 1
            assert stats["totals"].get("success", 0) < 100, "the map ran on after Ctrl+C"
        finally:
            probe.close()


MAPS_A_BIG_GENERATOR = textwrap.dedent("""
    import resource, sys
    from tests.apps.batch import app, square
    app.broker.use_url(sys.argv[1])
    count = int(sys.argv[2])
    square.map(range(2000))  # warm up: imports, connections, the chunk size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    done = sum(1 for _ in square.imap_unordered(x for x in range(count)))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(done, grown, flush=True)
""")


def test_a_large_generator_runs_in_flat_memory_on_the_client_and_the_broker():
    count = 300_000
    with broker_process() as (url, broker), worker_process_of(url, processes=2):
        probe = QueueTasks(name="batch", broker_url=url)
        try:
            wait_for_workers(probe, 2)
        finally:
            probe.close()
        broker_before = rss_kb(broker.pid)
        mapping = popen([sys.executable, "-c", MAPS_A_BIG_GENERATOR, url, str(count)], stdout=subprocess.PIPE)
        try:
            peak = broker_before
            while mapping.poll() is None:
                peak = max(peak, rss_kb(broker.pid))
                try:
                    mapping.wait(0.05)
                except subprocess.TimeoutExpired:
                    pass
            done, client_grown_kb = map(int, mapping.stdout.read().split())
        finally:
            stop_process(mapping)
        assert done == count
        # the input is read within a window of chunks: neither side holds more than a few thousand items
        assert client_grown_kb < 40_000, f"the client grew {client_grown_kb} KB over {count} items"
        assert peak - broker_before < 40_000, f"the broker grew {peak - broker_before} KB over {count} items"


def worker_process_of(url: str, processes: int = 1):
    from tests.support import worker_process

    return worker_process(APP, url, processes=processes, stderr=subprocess.DEVNULL)
