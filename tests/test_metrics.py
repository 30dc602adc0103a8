"""``qtasks-broker --metrics``: Prometheus metrics scraped over HTTP after known work."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

from qtasks import QueueTasks
from qtasks.ops import OpsClient
from tests.support import broker_process, popen, read_line_matching, stop_process, wait_for_workers, worker_process
from tests.test_telemetry import sample


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def test_counters_gauges_and_histograms_after_known_work():
    with broker_process("--metrics", "127.0.0.1:0") as (url, proc):
        metrics = read_line_matching(proc, r"metrics at (http://127\.0\.0\.1:\d+/metrics)", 20).group(1)
        with worker_process("tests.apps.ops:app", url, "--concurrency", "3"):
            app = QueueTasks(name="tests-ops", broker_url=url)
            idle = QueueTasks(name="tests-metrics-idle", broker_url=url)
            try:
                wait_for_workers(app, 1)
                # Given: 4 successes, 2 failures, 1 generator, a cancelled task and 2 queued ones nobody serves
                results = app.add_tasks([("add", [i], {}) for i in range(4)] + [("boom", ["x"], {})] * 2
                                        + [("steps", [2], {})], timeout=30)
                assert [r.status for r in results] == ["success"] * 4 + ["error"] * 2 + ["success"]
                cancelled = idle.add_task("add", 0, priority=2)
                idle.add_task("add", 1, priority=2)
                idle.add_task("add", 2, priority=9)
                with OpsClient(url) as ops:
                    assert ops.cancel(str(cancelled.uuid))
                # When: Prometheus scrapes
                text = scrape(metrics)
            finally:
                app.close()
                idle.close()
    # Then
    assert sample(text, "qtasks_tasks_total", task="add", status="submitted") == 7
    assert sample(text, "qtasks_tasks_total", task="add", status="succeeded") == 4
    assert sample(text, "qtasks_tasks_total", task="add", status="cancelled") == 1
    assert sample(text, "qtasks_tasks_total", task="boom", status="failed") == 2
    assert sample(text, "qtasks_tasks_total", task="boom", status="succeeded") == 0
    assert sample(text, "qtasks_tasks_total", task="steps", status="succeeded") == 1
    assert sample(text, "qtasks_run_seconds_count", task="add") == 4
    assert sample(text, "qtasks_run_seconds_bucket", task="add", le="+Inf") == 4
    assert 0 <= sample(text, "qtasks_run_seconds_sum", task="add") < 30
    assert sample(text, "qtasks_queue_wait_seconds_count", task="boom") == 2
    assert sample(text, "qtasks_queue_depth", queue="tests-metrics-idle", priority="2") == 1
    assert sample(text, "qtasks_queue_depth", queue="tests-metrics-idle", priority="9") == 1
    assert sample(text, "qtasks_workers") == 1 and sample(text, "qtasks_worker_slots") == 3
    assert sample(text, "qtasks_in_flight_tasks") == 0
    assert sample(text, "process_resident_memory_bytes") > 0


def test_a_non_loopback_metrics_bind_is_refused_unless_asked_for():
    proc = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--metrics", "0.0.0.0:0"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == 2
    assert "--metrics 0.0.0.0:0 is not a loopback address" in err and "--metrics-public" in err
