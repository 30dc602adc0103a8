"""``OpsClient`` against a real broker daemon and worker process: status, listings, inspect, actions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from qtasks import QueueTasks
from qtasks.exc import BrokerUnavailableError, InvalidTaskIdError, TaskNotFoundError
from qtasks.ops import OpsClient
from tests.support import (
    broker_process,
    free_port,
    popen,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)
from tests.test_auth import create_certs
from tests.test_timers import timer_process

IDLE = "tests-ops-idle"
"""An app nobody serves: its tasks stay queued."""


@pytest.fixture(scope="module")
def deployment() -> Iterator[tuple[str, QueueTasks]]:
    """A broker and one worker process (2 slots) serving ``tests.apps.ops``; yields (url, client app)."""
    with broker_process() as (url, _):
        with worker_process("tests.apps.ops:app", url, "--concurrency", "2"):
            app = QueueTasks(name="tests-ops", broker_url=url)
            wait_for_workers(app, 1)
            yield url, app
            app.close()


@pytest.fixture()
def ops(deployment) -> Iterator[OpsClient]:
    with OpsClient(deployment[0]) as client:
        yield client


def test_status_shows_a_queued_task_with_its_priority(deployment, ops):
    url, _ = deployment
    idle = QueueTasks(name=IDLE, broker_url=url)
    try:
        idle.add_task("add", 1, 2, priority=7)
        idle.add_task("add", 3, 4, priority=7)
        idle.add_task("add", 5, 6, priority=1)
    finally:
        idle.close()
    status = ops.status()
    [queue] = [q for q in status["queues"] if q["name"] == IDLE]
    assert queue["depth"] == 3 and queue["by_priority"] == {"1": 1, "7": 2}
    assert status["broker"]["url"] == url and status["broker"]["durable"] is False


def test_status_shows_a_running_task_on_its_worker_since_it_started(deployment, ops, tmp_path):
    _, app = deployment
    gate = tmp_path / "go"
    before = time.time()
    task = app.add_task("hold", str(gate))
    try:
        def running() -> dict | None:
            for worker in ops.status()["workers"]:
                for item in worker["running"]:
                    if item["uuid"] == str(task.uuid):
                        return {**item, "worker": worker}
            return None

        item = wait_for(running, 20, "the hold task to run on the worker")
        assert item["name"] == "hold" and before - 1 <= item["since"] <= time.time()
        worker = item["worker"]
        assert worker["slots"] == 2 and worker["queue"] == "tests-ops" and worker["pid"] > 0 and worker["host"]
    finally:
        gate.touch()
    assert app.get(task.uuid) is not None


def test_rates_and_grouped_failures_after_known_work():
    with broker_process() as (url, _):
        with worker_process("tests.apps.ops:app", url):
            app = QueueTasks(name="tests-ops", broker_url=url)
            try:
                wait_for_workers(app, 1)
                results = app.add_tasks([("add", [i, 1], {}) for i in range(12)] + [("boom", ["no"], {})] * 3
                                        + [("missing", ["k"], {})] * 2, timeout=30)
                assert [r.status for r in results].count("error") == 5
                with OpsClient(url) as ops:
                    status = ops.status()
            finally:
                app.close()
    assert status["rates"] == {"submitted": pytest.approx(17 / 60), "finished": pytest.approx(17 / 60),
                               "failed": pytest.approx(5 / 60)}
    assert status["totals"]["submitted"] == 17 and status["totals"]["success"] == 12
    failures = {f["exception"]: f for f in status["failures"]}
    assert set(failures) == {"ValueError", "KeyError"}
    assert failures["ValueError"]["count"] == 3 and failures["ValueError"]["last"]["name"] == "boom"
    assert failures["ValueError"]["last"]["message"] == "no"
    assert failures["KeyError"]["count"] == 2 and failures["KeyError"]["last"]["uuid"] in {
        str(r.uuid) for r in results[-2:]}


def test_inspect_shows_generator_steps_and_a_failure_s_traceback(deployment, ops):
    _, app = deployment
    generator = app.add_task("steps", 4, timeout=30)
    failed = app.add_task("boom", "it broke", timeout=30)
    task = ops.inspect(str(generator.uuid))
    assert task["status"] == "success" and task["steps"] == [0, 10, 20, 30] and task["args"] == [4]
    record = ops.inspect(str(failed.uuid))
    assert record["status"] == "error" and record["args"] == ["it broke"] and record["name"] == "boom"
    assert record["traceback"].rstrip().endswith("ValueError: it broke")
    assert record["retry_of"] is None and record["retries"] == []


def test_retry_makes_a_linked_task_and_inspect_shows_the_chain(deployment, ops):
    _, app = deployment
    failed = app.add_task("boom", "again", timeout=30)
    child = ops.retry(str(failed.uuid))
    assert child != str(failed.uuid)
    wait_for(lambda: ops.inspect(child)["status"] == "error", 20, "the retried task to fail again")
    assert ops.inspect(child)["retry_of"] == str(failed.uuid) and ops.inspect(child)["args"] == ["again"]
    assert ops.inspect(str(failed.uuid))["retries"] == [child]
    grandchild = ops.retry(child)
    assert ops.inspect(str(failed.uuid))["retries"] == [child, grandchild]


def test_cancel_a_queued_task_and_list_tasks_by_status_and_name(deployment, ops):
    url, _ = deployment
    idle = QueueTasks(name=IDLE, broker_url=url)
    try:
        queued = idle.add_task("add", 10, 20)
        other = idle.add_task("missing", "x")
    finally:
        idle.close()
    assert ops.cancel(str(queued.uuid), reason="not needed") is True
    assert ops.cancel(str(queued.uuid)) is False  # ended already
    record = ops.inspect(str(queued.uuid))
    assert record["status"] == "cancel" and record["cancel_reason"] == "not needed"
    cancelled = ops.tasks(status="cancel")
    assert str(queued.uuid) in [t["uuid"] for t in cancelled] and {t["status"] for t in cancelled} == {"cancel"}
    named = ops.tasks(name="missing", limit=1)
    assert [t["uuid"] for t in named] == [str(other.uuid)]
    newest = ops.tasks(limit=2)
    assert [t["uuid"] for t in newest] == [str(other.uuid), str(queued.uuid)]
    with pytest.raises(ValueError):
        ops.tasks(status="bogus")
    with pytest.raises(TaskNotFoundError):
        ops.cancel("00000000-0000-4000-8000-000000000000")
    with pytest.raises(InvalidTaskIdError):
        ops.inspect("not-a-uuid")


def test_dead_letters_and_retry_all(deployment, ops):
    _, app = deployment
    app.add_task("missing", "gone", timeout=30)
    dead = ops.dead_letters(limit=1000)
    assert dead["count"] >= 1 and any(t["args"] == ["gone"] for t in dead["dead_letters"])
    count = dead["count"]
    assert ops.retry_all_dead() == count
    wait_for(lambda: ops.dead_letters()["count"] == count, 30, "the retried dead letters to fail again")


def test_timers_report_their_next_fires(deployment, ops, tmp_path):
    url, _ = deployment
    log = tmp_path / "timer.log"
    with timer_process("sync", url, tmp_path / "stamps", log, trigger="interval:600"):
        [job] = wait_for(lambda: [j for j in ops.status()["timers"] if j["app"] == "tests-timers"], 20,
                         "the timer's report")
        assert job["task"] == "stamp" and "interval" in job["trigger"]
        assert time.time() < job["next_fire"] <= time.time() + 601
    wait_for(lambda: not [j for j in ops.status()["timers"] if j["app"] == "tests-timers"], 20,
             "the stopped timer's jobs to go")


def test_a_broker_that_does_not_answer_fails_within_the_timeout(tmp_path: Path):
    url = f"tcp://127.0.0.1:{free_port()}"
    with OpsClient(url, timeout=1.0) as ops:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError, match="no QTasks broker answered"):
            ops.status()
        assert time.monotonic() - started < 3.0


def test_a_curve_broker_answers_operators_with_a_client_key_only(tmp_path):
    keys = create_certs(tmp_path / "certs")
    with broker_process("--curve-secret-key", keys.secret("broker"), "--curve-clients", str(keys.clients),
                        "--curve-workers", str(keys.workers)) as (url, _):
        with OpsClient(url, curve_server_key=keys.public("broker"), curve_secret_key=keys.secret("client")) as ops:
            assert ops.status()["broker"]["url"] == url
        cli = popen([sys.executable, "-m", "qtasks", "--broker", url, "status", "--json", "--curve-server-key",
                     keys.public("broker"), "--curve-secret-key", keys.secret("client")],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = cli.communicate(timeout=60)
        finally:
            stop_process(cli)
        assert cli.returncode == 0, err
        assert json.loads(out)["workers"] == []
        with OpsClient(url, timeout=1.0) as stranger:
            with pytest.raises(BrokerUnavailableError):
                stranger.status()
    with pytest.raises(TypeError, match="curve_server_key"):
        OpsClient(url, curve_key="x")


def test_a_durable_broker_lists_and_shows_its_records(tmp_path):
    with broker_process("--data-dir", str(tmp_path / "data")) as (url, _):
        with worker_process("tests.apps.ops:app", url):
            app = QueueTasks(name="tests-ops", broker_url=url)
            try:
                wait_for_workers(app, 1)
                done = app.add_task("add", 20, 22, timeout=30)
                failed = app.add_task("missing", "k", timeout=30)
            finally:
                app.close()
        with OpsClient(url) as ops:
            status = ops.status()
            assert status["broker"]["durable"] is True
            assert [q["dead"] for q in status["queues"] if q["name"] == "tests-ops"] == [1]
            assert [t["uuid"] for t in ops.tasks(status="success")] == [str(done.uuid)]
            assert ops.inspect(str(done.uuid))["returning"] == 42
            assert ops.inspect(str(failed.uuid))["traceback"].rstrip().endswith("KeyError: 'k'")
