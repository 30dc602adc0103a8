"""Plugins end to end: each trigger fires in the process its event happens in, and answers count.

A broker daemon, ``qtasks -A tests.apps.plugged:<app> run`` (a supervisor and one worker
process) and the test as the client; every component of the app carries a recording plugin
(``tests/apps/plugged.py``) that writes ``trigger component pid`` lines, and a ``Rewriter``
that changes the call at each layer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest

from qtasks import QueueTasks
from qtasks.plugins.base import BasePlugin
from tests.apps import plugged
from tests.support import broker_process, read_line_matching, stop_process, wait_for, wait_for_workers, worker_process

CLIENT = {
    ("qtasks_add_task_before_broker", "app"), ("broker_add_before", "broker"), ("broker_add_after", "broker"),
    ("qtasks_add_task_after_broker", "app"), ("broker_get", "broker"), ("qtasks_get", "app"),
    ("qtasks_ping", "app"), ("qtasks_flush_all", "app"), ("broker_flush_all", "broker"),
    ("global_config_set", "global_config"), ("global_config_get", "global_config"),
}
SUPERVISOR = {
    ("starter_start", "app"), ("starter_stop", "app"), ("broker_start", "broker"), ("broker_stop", "broker"),
    ("global_config_start", "global_config"), ("global_config_stop", "global_config"),
    ("plugin_start", "app"), ("plugin_stop", "app"), ("plugin_start", "broker"), ("plugin_stop", "broker"),
    ("plugin_start", "global_config"), ("plugin_stop", "global_config"),
}
WORKER = {
    ("plugin_start", "worker"), ("plugin_stop", "worker"), ("worker_start", "worker"), ("worker_stop", "worker"),
    ("broker_listen_start", "broker"), ("broker_add_worker", "broker"), ("worker_add", "worker"),
    ("worker_run_task_before", "worker"), ("worker_execute_before", "worker"),
    ("task_executor_before_execute", "worker"), ("task_executor_args_replace", "worker"),
    ("task_executor_middlewares_execute", "worker"), ("task_executor_run_task", "worker"),
    ("task_executor_after_execute", "worker"), ("task_executor_after_execute_result_replace", "worker"),
    ("task_executor_task_close", "worker"), ("task_executor_decode", "worker"),
    ("task_executor_run_task_gen", "worker"), ("task_executor_run_task_trigger_error", "worker"),
    ("worker_task_error_retry", "worker"), ("worker_remove_finished_task", "worker"),
    ("broker_remove_finished_task", "broker"), ("worker_execute_after", "worker"),
}


def fired(path: Path) -> dict[tuple[str, str], set[int]]:
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for line in path.read_text().splitlines():
        trigger, component, pid = line.split()
        where[trigger, component].add(int(pid))
    return where


@pytest.fixture()
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "triggers.log"
    monkeypatch.setenv("PLUGGED_RECORD", str(path))
    return path


@pytest.fixture()
def served(recording: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, subprocess.Popen[str], Path]]:
    """The named app of tests.apps.plugged served by a supervisor with one worker process."""
    name = request.param
    app = getattr(plugged, name)
    with broker_process() as (url, _):
        with worker_process(f"tests.apps.plugged:{name}", url, env={"PLUGGED_RECORD": str(recording)},
                            stderr=subprocess.PIPE) as proc:
            app.broker.use_url(url)
            try:
                yield app, proc, recording
            finally:
                app.close()


def check_where_each_trigger_fired(where: dict[tuple[str, str], set[int]], supervisor: int, worker: int) -> None:
    expected = {**{key: {os.getpid()} for key in CLIENT}, **{key: {supervisor} for key in SUPERVISOR},
                **{key: {worker} for key in WORKER}}
    assert {key: where.get(key) for key in expected} == expected
    assert set(where) == set(expected), f"unexpected triggers: {sorted(set(where) - set(expected))}"


@pytest.mark.parametrize("served", ["sync_app"], indirect=True)
def test_sync_app_each_trigger_fires_in_its_process_and_answers_count(served):
    app, proc, recording = served
    (worker_pid,) = wait_for_workers(app, 1)
    assert app.ping()
    renamed = app.add_task("alias", 1, 2, timeout=20)
    check_rewritten(renamed, worker_pid)
    swapped = app.add_task("pair", "a", "b", swap=True, timeout=20)
    assert swapped.returning == {"pair": ["b", "a"]}  # task_executor_args_replace in the sync app
    failed = app.add_task("flaky", timeout=20)
    assert failed.status == "error" and failed.retry == 0  # one retry, through the retry plugin
    assert app.add_task("asks_plugins", timeout=20).returning == "handled: over to the plugins"
    assert app.add_task("steps", 4, timeout=20).returning == [6]
    assert app.get(renamed.uuid).status == "success (seen by qtasks_get)"
    app.global_config.set("main", "mode", "on")
    assert app.global_config.get("main", "mode") == "on"
    app.flush_all()
    assert app.get(renamed.uuid) is None
    assert stop_process(proc) == 0
    check_where_each_trigger_fired(fired(recording), proc.pid, worker_pid)


@pytest.mark.parametrize("served", ["async_app"], indirect=True)
def test_async_app_each_trigger_fires_in_its_process_and_answers_count(served):
    app, proc, recording = served
    observer = QueueTasks(name="observer", broker_url=app.broker.url)
    (worker_pid,) = wait_for_workers(observer, 1)
    observer.close()

    async def client() -> None:
        assert await app.ping()
        renamed = await app.add_task("alias", 1, 2, timeout=20)
        check_rewritten(renamed, worker_pid)
        swapped = await app.add_task("pair", "a", "b", swap=True, timeout=20)
        assert swapped.returning == {"pair": ["b", "a"]}
        failed = await app.add_task("flaky", timeout=20)
        assert failed.status == "error" and failed.retry == 0
        assert (await app.add_task("asks_plugins", timeout=20)).returning == "handled: over to the plugins"
        assert (await app.add_task("steps", 4, timeout=20)).returning == [6]
        assert (await app.get(renamed.uuid)).status == "success (seen by qtasks_get)"
        await app.global_config.set("main", "mode", "on")
        assert await app.global_config.get("main", "mode") == "on"
        await app.flush_all()
        assert await app.get(renamed.uuid) is None

    asyncio.run(client())
    assert stop_process(proc) == 0
    check_where_each_trigger_fired(fired(recording), proc.pid, worker_pid)


def check_rewritten(task: Any, worker_pid: int) -> None:
    """``alias(1, 2)`` became ``pair(1, 2, "added")`` at priority 7, with fields from three plugins."""
    assert (task.task_name, task.status, task.priority) == ("pair", "success", 7)
    assert task.returning == {"pair": [1, 2, "added"]}
    assert (task.origin, task.submitted_by, task.ran_in) == ("plugin", os.getpid(), worker_pid)


def test_flush_all_deletes_ended_records_and_keeps_running_tasks(app, tmp_path):
    gate = tmp_path / "gate"
    running = app.add_task("wait_for_file", str(gate))
    wait_for(lambda: app.get(running.uuid).status == "process", 10, "the task to start")
    done = app.add_task("echo", "gone soon", timeout=10)
    app.flush_all()
    assert app.get(done.uuid) is None
    assert app.get(running.uuid).status == "process"
    gate.touch()
    assert running.wait_result(timeout=10).status == "success"


class Answers(BasePlugin):
    def trigger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return {"model": "not a status"}


def test_broker_add_before_must_answer_a_new_status_model(app):
    app.broker.add_plugin(Answers(), ["broker_add_before"])
    try:
        with pytest.raises(ValueError, match="Invalid task status."):
            app.add_task("echo", 1)
    finally:
        app.broker.plugins.pop("broker_add_before")


def test_a_failing_app_plugin_is_logged_with_plugin_and_trigger_and_the_call_goes_on(app, caplog):
    app.add_plugin(plugged.Broken("Broken"), ["qtasks_add_task_before_broker", "qtasks_add_task_after_broker"])
    try:
        with caplog.at_level(logging.ERROR, logger="qtasks.plugins"):
            task = app.add_task("echo", "through", timeout=10)
    finally:
        app.plugins.pop("qtasks_add_task_before_broker")
        app.plugins.pop("qtasks_add_task_after_broker")
    assert task.returning == "through"
    failures = [r for r in caplog.records if "plugin Broken failed on trigger" in r.getMessage()]
    assert [r.getMessage().split(":")[0] for r in failures] == [
        "plugin Broken failed on trigger qtasks_add_task_before_broker",
        "plugin Broken failed on trigger qtasks_add_task_after_broker"]
    assert all(r.exc_info is not None for r in failures)  # with its traceback


def test_a_plugin_failing_during_a_task_fails_the_task_with_the_plugin_error(tmp_path):
    with broker_process() as (url, _):
        with worker_process("tests.apps.plugged:sync_app", url, "--log-level", "INFO",
                            env={"PLUGGED_BREAK": "task_executor_args_replace"},
                            stderr=subprocess.PIPE) as proc:
            app = plugged.sync_app
            app.broker.use_url(url)
            try:
                wait_for_workers(app, 1)
                failed = app.add_task("pair", 1, timeout=20)
                assert failed.status == "error"
                assert "TaskPluginTriggerError" in failed.traceback and "broken on task_executor_args_replace" \
                    in failed.traceback
                read_line_matching(proc, r"plugin Broken failed on trigger task_executor_args_replace", 20,
                                   stream="stderr")
            finally:
                app.close()
        assert proc.returncode is not None
