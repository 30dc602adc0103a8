"""User subclasses of every component, wrapping the defaults, work end to end.

``tests/apps/custom.py`` builds an app from a recording broker, worker, task executor and
global config, and serves it with a recording starter (``python -m tests.apps.custom``);
each writes ``component.call pid`` lines. A user storage is loaded by the daemon with
``qtasks-broker --storage module:factory``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from qtasks import QueueTasks
from tests.apps import custom
from tests.support import broker_process, popen, stop_process, wait_for, wait_for_workers


def calls(path: Path) -> dict[str, set[int]]:
    where: dict[str, set[int]] = defaultdict(set)
    for line in path.read_text().splitlines():
        call, pid = line.rsplit(" ", 1)
        where[call].add(int(pid))
    return where


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_subclass_of_each_component_serves_the_app(face, tmp_path, monkeypatch):
    record = tmp_path / "calls.log"
    monkeypatch.setenv("CUSTOM_RECORD", str(record))
    app = custom.sync_app if face == "sync" else custom.async_app
    with broker_process() as (url, _):
        starter = popen([sys.executable, "-m", "tests.apps.custom", face],
                        env={"QTASKS_BROKER_URL": url, "CUSTOM_RECORD": str(record)})
        try:
            observer = QueueTasks(name=app.name, broker_url=url)
            (worker_pid,) = wait_for_workers(observer, 1)
            observer.close()
            app.broker.use_url(url)

            async def use_async() -> int:
                await app.global_config.set("main", "mode", "custom")
                return (await app.add_task("double", 21, timeout=20)).returning

            def use_sync() -> int:
                app.global_config.set("main", "mode", "custom")
                return app.add_task("double", 21, timeout=20).returning

            assert (use_sync() if face == "sync" else asyncio.run(use_async())) == 42
            assert stop_process(starter) == 0
        finally:
            stop_process(starter)
            app.close()
    me, supervisor = os.getpid(), starter.pid
    assert calls(record) == {
        "starter.start 1 False": {supervisor}, "broker.start": {supervisor}, "broker.stop": {supervisor},
        "worker.start": {worker_pid}, "worker.add": {worker_pid}, "worker.stop": {worker_pid},
        f"executor.execute RecordingExecutor {app.config.max_tasks_process}": {worker_pid},
        "broker.submit": {me}, "global_config.set": {me}, "starter.stop": {supervisor},
    }


def test_the_daemon_serves_a_user_storage_given_as_module_factory(tmp_path):
    record = tmp_path / "storage.log"
    with broker_process("--storage", "tests.apps.storages:make_storage",
                        env={"STORAGE_RECORD": str(record)}) as (url, proc):
        client = QueueTasks(name="storage-client", broker_url=url)
        try:
            assert client.add_task("nobody_serves_this").status == "new"
            client.flush_all()
        finally:
            client.close()
        wait_for(lambda: "add_many" in record.read_text(), 10, "the storage to be used")
    assert record.read_text().splitlines() == ["storage_start", "add_many 1", "storage_flush_all", "delete_ended",
                                               "storage_stop", "close"]


@pytest.mark.parametrize("spec, message", [
    ("nowhere:make", "cannot import module 'nowhere' for --storage nowhere:make"),
    ("tests.apps.storages:missing", "module 'tests.apps.storages' has no attribute 'missing'"),
    ("tests.apps.storages:not_a_storage", "gave a dict, not a broker_daemon.storage.Storage: subclass Storage"),
    ("tests.apps.storages:failing_factory", "the factory failed: OSError: disk on fire"),
    ("no-colon", "--storage expects module:attribute"),
])
def test_a_bad_storage_spec_is_refused_with_what_to_fix(spec, message):
    proc = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--storage", spec],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == 2 and message in err, err
    assert "listening" not in out
