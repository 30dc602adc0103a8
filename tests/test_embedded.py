"""The embedded default: with no daemon, serving hosts a broker itself; other processes reach it."""

from __future__ import annotations

import signal
import subprocess
import sys

from qtasks import QueueTasks
from tests.apps import basic
from tests.support import (
    ROOT,
    alive,
    broker_process,
    free_port,
    popen,
    read_line_matching,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)


def test_main_py_with_run_forever_hosts_a_broker_other_processes_reach():
    url = f"tcp://127.0.0.1:{free_port()}"
    proc = popen([sys.executable, str(ROOT / "examples" / "main.py")], env={"QTASKS_BROKER_URL": url},
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Given `python main.py` whose last line is app.run_forever(), and no daemon
        announced = read_line_matching(proc, r"embedded broker listening at (\S+);", 30, "stderr")
        assert announced.group(1) == url
        assert "no broker was listening at" in announced.string and "hosts one" in announced.string
        # When a client in another process (this one) sends tasks to the default endpoint
        client = QueueTasks(name="example", broker_url=url)
        task = client.add_task("echo", "Hello", timeout=10)
        # Then they are served
        assert (task.status, task.returning) == ("success", "Hello")
        assert client.add_task("add", 1, 2, 3.5, timeout=10).returning == 6.5
        client.close()
        # and SIGTERM stops workers and broker cleanly
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)


def test_cli_run_hosts_a_broker_when_none_listens():
    url = f"tcp://127.0.0.1:{free_port()}"
    with worker_process("tests.apps.basic:app", url, processes=2) as proc:
        client = QueueTasks(name="tests", broker_url=url)
        wait_for_workers(client, 2)
        assert client.add_task("echo", "embedded", timeout=10).returning == "embedded"
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_cli_run_connects_to_a_listening_broker_instead(tmp_path):
    with broker_process() as (url, broker):
        log = tmp_path / "worker.log"
        with open(log, "w") as sink, worker_process("tests.apps.basic:app", url, stderr=sink):
            client = QueueTasks(name="tests", broker_url=url)
            wait_for_workers(client, 1)
            assert client.add_task("echo", 1, timeout=10).returning == 1
            client.close()
        text = log.read_text()
        assert "connecting 1 worker process(es) to the broker at" in text
        assert "hosts one" not in text


def test_serving_block_runs_a_local_batch_job():
    url = f"tcp://127.0.0.1:{free_port()}"
    app = QueueTasks(name="tests", broker_url=url)
    app.tasks.update(basic.app.tasks)  # the same task functions, registered on this app
    with app.serving(processes=2, grace=5):
        results = app.add_tasks([("add", [i, i], {}) for i in range(50)], timeout=30)
        assert [r.returning for r in results] == [2 * i for i in range(50)]
        pids = {app.add_task("whoami", 0.2, timeout=10).returning for _ in range(2)}
        assert len(pids) >= 1
    app.close()


KILLED_INSIDE_SERVING = """
import os, sys, time
from tests.apps.basic import app
app.broker.use_url(sys.argv[1])
with app.serving(processes=1, grace=5):
    print("worker", app.add_task("whoami", 0.0, timeout=30).returning, flush=True)
    time.sleep(120)
"""


def test_a_program_killed_inside_serving_leaves_no_workers_behind():
    url = f"tcp://127.0.0.1:{free_port()}"
    program = popen([sys.executable, "-c", KILLED_INSIDE_SERVING, url], stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL)
    try:
        worker_pid = int(read_line_matching(program, r"worker (\d+)", 60).group(1))
        program.send_signal(signal.SIGKILL)
        program.wait(10)
        assert wait_for(lambda: not alive(worker_pid), 30, "the worker process of the killed program to stop")
    finally:
        stop_process(program)
