"""``qtasks status|inspect|tasks|cancel|retry`` as a person runs them: real broker, worker and CLI processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest

from qtasks import QueueTasks
from tests.support import (
    broker_process,
    free_port,
    popen,
    read_line_matching,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)

IDLE = "tests-ops-cli-idle"


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[str, QueueTasks]]:
    with broker_process() as (url, _):
        with worker_process("tests.apps.ops:app", url):
            app = QueueTasks(name="tests-ops", broker_url=url)
            wait_for_workers(app, 1)
            yield url, app
            app.close()


def qtasks(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = popen([sys.executable, "-m", "qtasks", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_status_text_and_json(deployment):
    url, app = deployment
    app.add_task("boom", "for the record", timeout=30)
    idle = QueueTasks(name=IDLE, broker_url=url)
    try:
        idle.add_task("add", 1, priority=4)
    finally:
        idle.close()
    text = qtasks("--broker", url, "status")
    assert text.returncode == 0, text.stderr
    pid = next(w["pid"] for w in json.loads(qtasks("--broker", url, "status", "--json").stdout)["workers"])
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"broker {url}")
    assert any(line.split()[:2] == [IDLE, "1"] and "4:1" in line for line in lines)
    assert any(str(pid) in line and "tests-ops" in line for line in lines)
    assert any(line.startswith("RATES per second") for line in lines)
    assert any("ValueError" in line and "boom" in line for line in lines)
    document = json.loads(qtasks("--broker", url, "status", "--json").stdout)
    assert {"broker", "queues", "workers", "rates", "totals", "failures", "timers"} <= set(document)


def test_status_with_the_app_s_broker_url(deployment):
    url, _ = deployment
    result = qtasks("-A", "tests.apps.ops:app", "status", "--json", env={"QTASKS_BROKER_URL": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["broker"]["url"] == url


def test_watch_redraws_until_ctrl_c_and_exits_0(deployment):
    url, _ = deployment
    proc = popen([sys.executable, "-m", "qtasks", "--broker", url, "status", "--watch"], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    try:
        read_line_matching(proc, r"^(\x1b\[H\x1b\[J)?broker ", 20)
        read_line_matching(proc, r"^\x1b\[H\x1b\[Jbroker ", 20)  # drawn again, over the first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        stop_process(proc)


def test_inspect_shows_steps_traceback_and_retry_chain(deployment):
    url, app = deployment
    generator = app.add_task("steps", 3, timeout=30)
    shown = qtasks("--broker", url, "inspect", str(generator.uuid))
    assert shown.returncode == 0, shown.stderr
    assert "status    success" in shown.stdout and "steps     3" in shown.stdout
    assert [line.split() for line in shown.stdout.splitlines() if line.startswith("     ")][:3] == [
        ["0", "0"], ["1", "10"], ["2", "20"]]
    failed = app.add_task("boom", "kaput", timeout=30)
    retried = qtasks("--broker", url, "retry", str(failed.uuid))
    assert retried.returncode == 0, retried.stderr
    child = retried.stdout.split("->")[1].strip()
    shown = qtasks("--broker", url, "inspect", child)
    assert f"retries   {failed.uuid} -> {child} (this)" in shown.stdout
    wait_for(lambda: "status    error" in qtasks("--broker", url, "inspect", child).stdout, 20,
             "the retried task to fail again")
    shown = qtasks("--broker", url, "inspect", str(failed.uuid))
    assert "ValueError: kaput" in shown.stdout.splitlines()[-1] and "traceback" in shown.stdout
    as_json = json.loads(qtasks("--broker", url, "inspect", str(failed.uuid), "--json").stdout)
    assert as_json["retries"] == [child] and as_json["status"] == "error"


def test_cancel_a_queued_task_and_list_tasks(deployment):
    url, _ = deployment
    idle = QueueTasks(name=IDLE, broker_url=url)
    try:
        queued = idle.add_task("add", 2, 3)
    finally:
        idle.close()
    done = qtasks("--broker", url, "cancel", str(queued.uuid), "--reason", "changed my mind")
    assert done.returncode == 0 and done.stdout.strip() == f"cancelled {queued.uuid}"
    again = qtasks("--broker", url, "cancel", str(queued.uuid))
    assert again.returncode == 1 and "ended already (cancel)" in again.stderr
    listed = qtasks("--broker", url, "tasks", "--status", "cancel")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(str(queued.uuid)))
    assert row.split()[1:3] == ["add", "cancel"] and "changed my mind" in row
    as_json = json.loads(qtasks("--broker", url, "tasks", "--name", "add", "--limit", "1", "--json").stdout)
    assert [t["uuid"] for t in as_json] == [str(queued.uuid)]
    assert qtasks("--broker", url, "tasks", "--limit", "5000").returncode == 2
    unknown = qtasks("--broker", url, "inspect", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and "has no task 00000000-0000-4000-8000-000000000000" in unknown.stderr


def test_an_unanswering_broker_gives_the_api_s_error_within_the_timeout():
    url = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = qtasks("--broker", url, "--timeout", "1", "status")
    assert result.returncode == 1
    assert f"no QTasks broker answered at {url} within 1 s" in result.stderr
    assert time.monotonic() - started < 10  # interpreter start-up included


def test_stats_inspect_still_describes_the_app():
    result = qtasks("-A", "tests.apps.ops:app", "stats", "inspect", "tasks")
    assert result.returncode == 0, result.stderr
    assert "steps" in result.stdout and "hold" in result.stdout
