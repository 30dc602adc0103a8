"""The task features end to end, for apps of both flavours: served in this process (the broker and
worker actors in threads), and by the daemon and worker processes where processes matter."""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.inprocess import InProcessStack
from qtasks.utils.tasks import AsyncTaskUtils
from qtasks.utils.tasks.sync_task_utils import SyncTaskUtils
from tests.support import broker_process, wait_for, wait_for_workers, worker_process

FLAVOURS = {"sync": ("tests.apps.features_sync:app", "features-sync"),
            "async": ("tests.apps.features_async:app", "features-async")}


class Engine:
    """One app flavour served in this process, and a client for it."""

    def __init__(self, flavour: str, url: str, markers: Path) -> None:
        self.flavour = flavour
        self.url = url
        self.markers = markers
        self.name = FLAVOURS[flavour][1]
        self.client = QueueTasks(name=self.name, broker_url=url)

    def marker(self, label: str) -> Path:
        return self.markers / f"{label}-{uuid.uuid4().hex[:8]}"


def served_app(flavour: str) -> Any:
    module = importlib.import_module(FLAVOURS[flavour][0].split(":")[0])
    return module.app


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    flavour = request.param
    markers = tmp_path_factory.mktemp(f"features-{flavour}")
    app = served_app(flavour)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QTASKS_TEST_MIDDLEWARE_LOG", str(markers / "middleware.log"))
        env.setenv("QTASKS_TEST_TEARDOWN", str(markers / "teardown.log"))
        env.setattr(app.config, "thread_stop_grace", 60.0)
        with InProcessStack(app, workers=2) as stack:
            engine = Engine(flavour, stack.url, markers)
            yield engine
            engine.client.close()


# 1. generators ---------------------------------------------------------------------------------


def test_generator_gets_the_handled_value_back_and_returns_it(engine):
    assert engine.client.add_task("send_back", timeout=10).returning == "handled INIT"


def test_generator_without_return_gives_the_list_of_handled_values(engine):
    task = engine.client.add_task("counter", 5, timeout=10)
    assert task.returning == [7, 8, 9, 10, 11]
    assert task.steps == [7, 8, 9, 10, 11]
    assert engine.client.add_task("async_counter", 5, timeout=10).returning == [8, 9, 10, 11, 12]


def test_steps_are_visible_while_a_generator_runs_and_can_be_streamed(engine):
    marker = engine.marker("steps")
    task = engine.client.add_task("slow_steps", 4, 0.2, str(marker))
    wait_for(marker.exists, 10, "two steps")
    running = wait_for(lambda: (t := engine.client.get(task.uuid)) and len(t.steps) >= 2 and t, 10,
                       "the broker to have two steps")
    assert running.status == "process" and running.steps[:2] == [0, 1]
    assert list(engine.client.stream(task.uuid, timeout=20)) == [0, 1, 2, 3]
    assert engine.client.get(task.uuid).returning == [0, 1, 2, 3]

    async def follow() -> list:
        aapp = qtasks.asyncio.QueueTasks(name=engine.name, broker_url=engine.url)
        new = await aapp.add_task("slow_steps", 3, 0.05)
        seen = [step async for step in aapp.stream(new.uuid, timeout=20)]
        aapp.close()
        return seen

    assert asyncio.run(follow()) == [0, 1, 2]
    assert list(engine.client.stream(uuid.uuid4(), timeout=5)) == []  # unknown task: nothing


# 2. echo and ctx ------------------------------------------------------------------------------------


def test_echo_self_and_ctx_are_bound_to_the_running_app(engine):
    task = engine.client.add_task("introspect", timeout=10)
    info = task.returning
    assert info["object"] == "AsyncTask" and info["task_name"] == "introspect"
    assert info["uuid"] == str(task.uuid) and info["status"] == "process"
    assert info["max_tasks_process"] == 10 and info["broker"] is True and info["tags"] == ["ctx"]
    assert info["logger"] == f"introspect {task.uuid}"  # log lines carry the task's name and uuid
    other = engine.client.add_task("double", 21, timeout=10)
    sync = engine.client.add_task("sync_introspect", str(other.uuid), timeout=10).returning
    assert sync["object"] == "SyncTask" and sync["other"] == 42 and sync["config"] == 10


def test_self_add_task_waits_for_a_child_without_blocking_the_process(engine):
    assert engine.client.add_task("parent", 20, timeout=10).returning == 41
    assert engine.client.add_task("sync_parent", 5, timeout=10).returning == 11
    # many parents at once on 2 processes x 10 slots: children still get slots
    results = engine.client.add_tasks([("parent", [i], {}) for i in range(30)], timeout=30)
    assert [t.returning for t in results] == [2 * i + 1 for i in range(30)]


def test_ctx_cancel_and_plugin_error(engine):
    task = engine.client.add_task("gives_up", timeout=10)
    assert (task.status, task.cancel_reason, task.returning, task.traceback) == ("cancel", "not today", None, None)
    failed = engine.client.add_task("plugin_failure", timeout=10)
    assert failed.status == "error" and "TaskPluginTriggerError" in failed.traceback


# 3. cancellation from outside ------------------------------------------------------------------------


def test_cancelling_a_running_async_task_stops_it_and_runs_teardown(engine):
    started, done = engine.marker("started"), engine.marker("done")
    teardown = engine.markers / "teardown.log"
    closed_before = teardown.read_text().count("closed") if teardown.exists() else 0
    task = engine.client.add_task("cancellable", str(started), str(done))
    wait_for(started.exists, 10, "the task to start")
    cancelled = engine.client.cancel(task.uuid, reason="user asked")
    assert cancelled.status == "cancel" and cancelled.cancel_reason == "user asked"
    wait_for(lambda: teardown.exists() and teardown.read_text().count("closed") > closed_before, 10,
             "the dependency teardown")
    assert not done.exists()
    assert engine.client.get(task.uuid).status == "cancel"


def test_cancelling_a_queued_task_means_it_never_runs(engine):
    marker = engine.marker("never")
    task = engine.client.add_task("never_runs", str(marker), priority=50)
    # it may already have been dispatched; either way it must end cancelled
    cancelled = engine.client.cancel(task.uuid, "too late")
    assert cancelled.status == "cancel" or cancelled.status == "success"
    if cancelled.status == "cancel":
        assert task.wait_result(timeout=5).status == "cancel"
    assert engine.client.cancel(uuid.uuid4()) is None
    finished = engine.client.add_task("double", 1, timeout=10)
    assert engine.client.cancel(finished.uuid).status == "success"  # finished ones stay as they are


def test_cancelling_a_running_sync_task_discards_its_result(engine):
    started, finished = engine.marker("sync-started"), engine.marker("sync-finished")
    task = engine.client.add_task("sync_cancellable", str(started), 0.3, str(finished))
    wait_for(started.exists, 10, "the task to start")
    assert engine.client.cancel(task.uuid, "enough").status == "cancel"
    # the thread finishes on its own; its result must not replace the cancel
    wait_for(finished.exists, 10, "the task's thread to return")
    assert engine.client.add_task("double", 1, timeout=10).returning == 2  # whatever it sent has arrived
    final = engine.client.get(task.uuid)
    assert (final.status, final.returning, final.cancel_reason) == ("cancel", None, "enough")


# 4. retries ------------------------------------------------------------------------------------------


def test_retries_follow_the_chain_to_the_final_result(engine):
    key = uuid.uuid4().hex
    first = engine.client.add_task("flaky", key, 2)
    final = first.wait_result(timeout=20)
    assert final.status == "success" and final.returning == 3
    assert final.uuid != first.uuid and final.retry == 0 and final.retry_parent_uuid
    head = engine.client.get(first.uuid)
    assert head.status == "retry" and head.retry == 2 and head.retry_child_uuid
    assert "ConnectionError: run 1 failed" in head.traceback
    middle = engine.client.get(head.retry_child_uuid)
    assert (middle.status, middle.retry, middle.retry_parent_uuid) == ("retry", 1, str(first.uuid))
    assert str(final.uuid) == middle.retry_child_uuid


def test_retries_end_in_error_when_used_up(engine):
    key = uuid.uuid4().hex
    final = engine.client.add_task("flaky", key, 10, timeout=20)  # fails more often than it may retry
    assert final.status == "error" and final.retry == 0
    assert "run 3 failed" in final.traceback


def test_retry_on_exc_matches_subclasses(engine):
    retried = engine.client.add_task("picky", uuid.uuid4().hex, "key", timeout=20)
    assert retried.status == "success" and retried.returning == 2  # KeyError is a LookupError
    refused = engine.client.add_task("picky", uuid.uuid4().hex, "value", timeout=20)
    assert refused.status == "error" and refused.retry is None and "ValueError" in refused.traceback


def test_retry_with_a_delay_is_held_by_the_broker(engine):
    key = uuid.uuid4().hex
    first = engine.client.add_task("retry_later", key, 0.3)
    wait_for(lambda: engine.client.broker_stats()["delayed"] == 1, 10, "the broker to hold the retry")
    final = first.wait_result(timeout=20)
    assert final.status == "success" and final.returning >= 0.3


# 5. time limits --------------------------------------------------------------------------------------


def test_an_async_task_past_max_time_ends_in_error(engine):
    started = time.monotonic()
    task = engine.client.add_task("sleepy", 5, timeout=10)
    assert task.status == "error" and time.monotonic() - started < 4
    assert task.traceback.strip().endswith("Time limit exceeded for task sleepy: 0.3 seconds")


def test_a_sync_task_past_max_time_fails_on_time(engine):
    started = time.monotonic()
    task = engine.client.add_task("blocking", 1.5, timeout=10)
    assert task.status == "error" and time.monotonic() - started < 1.4
    assert "Time limit exceeded for task blocking: 0.3 seconds" in task.traceback


# 6. decode ------------------------------------------------------------------------------------------


def test_decode_shapes_the_stored_result(engine):
    assert engine.client.add_task("decorated", 5, timeout=10).returning == "<5>"
    assert engine.client.add_task("async_decorated", [1], timeout=10).returning == {"wrapped": [1]}
    assert engine.client.add_task("as_json", "Hello, Test!", timeout=10).returning == "Hello, Test!"
    assert engine.client.add_task("as_json", {"a": [1, 2]}, timeout=10).returning == {"a": [1, 2]}
    opaque = engine.client.add_task("opaque", "x", timeout=10)
    assert opaque.status == "success" and opaque.returning == "{'x'}"  # readable, not lost


# 7. middlewares and executors ----------------------------------------------------------------------------


def test_middlewares_change_arguments_and_results_once_per_execution(engine):
    results = [engine.client.add_task("adjusted", 10, timeout=10).returning for _ in range(3)]
    assert results == [22, 22, 22]
    log = engine.markers / "middleware.log"
    assert log.read_text().splitlines().count("adjusted") == 3  # app-wide middleware, once each


def test_custom_executor(engine):
    assert engine.client.add_task("executed", "v", timeout=10).returning == {
        "tagged": "v", "executor": "TaggingExecutor"}


# 8. routers, shared tasks, chains -----------------------------------------------------------------


def test_router_and_shared_tasks_run(engine):
    assert engine.client.add_task("routed_bare", 1, timeout=10).returning == "bare 1"
    assert engine.client.add_task("routed_called", 2, timeout=10).returning == "called 2"
    import importlib

    app = importlib.import_module(FLAVOURS[engine.flavour][0].split(":")[0]).app
    assert app.tasks["routed_called"].priority == 3  # the called form kept its options
    assert {t._app for t in app.routers[0].task_objects} == {app}  # bound on include
    assert engine.client.add_task("add", 1, 2, 3, timeout=10).returning == 6
    assert engine.client.add_task("shared_async", 4, timeout=10).returning == 40


def test_chains_append_the_previous_result(engine):
    from tests.apps import shared

    client_app = QueueTasks(name=engine.name, broker_url=engine.url)
    shared.add._app = client_app
    try:
        results = SyncTaskUtils.chain(shared.add(2, 2), shared.add(4), shared.add(8)).get(timeout=10)
        assert [t.returning for t in results] == [4, 8, 16]
    finally:
        shared.add._app = None
        client_app.close()

    async def run_async_chain() -> list:
        aapp = qtasks.asyncio.QueueTasks(name=engine.name, broker_url=engine.url)
        shared.shared_async._app = aapp
        try:
            chain = AsyncTaskUtils.chain(shared.shared_async(1), shared.shared_async())
            return [t.returning for t in await chain.get(timeout=10)]
        finally:
            shared.shared_async._app = None
            aapp.close()

    assert asyncio.run(run_async_chain()) == [10, 100]


# 10. pydantic --------------------------------------------------------------------------------------------


def test_pydantic_models_are_built_from_the_call_and_dumped(engine):
    by_keywords = engine.client.add_task("create_user", name="ada", age=36, timeout=10)
    assert by_keywords.returning == {"name": "ADA", "age": 37}
    assert engine.client.add_task("create_user", "bob", 1, timeout=10).returning == {"name": "BOB", "age": 2}
    assert engine.client.add_task("create_user", user={"name": "cy", "age": 3}, timeout=10).returning == {
        "name": "CY", "age": 4}
    bad = engine.client.add_task("create_user", name="x", age="old", timeout=10)
    assert bad.status == "error" and "Error while building the model for 'user'" in bad.traceback
    assert "ValueError" in bad.traceback


# 9. events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_events_fire_in_the_process_where_they_apply(flavour, tmp_path):
    app_spec, name = FLAVOURS[flavour]
    log = tmp_path / "events.log"
    with broker_process() as (url, _), worker_process(app_spec, url, processes=2,
                                                      env={"QTASKS_TEST_EVENTS": str(log)}) as supervisor:
        client = QueueTasks(name=name, broker_url=url)
        wait_for_workers(client, 2)
        # tasks that end in success, cancel and error, as many times as it takes to reach both processes
        for _ in range(4):
            client.add_tasks([("double", [1], {})] * 4, timeout=10)
        client.add_task("gives_up", timeout=10)
        client.add_task("sleepy", 5, timeout=10)
        client.close()
        lines = [line.split(" ") for line in log.read_text().splitlines()]
        events = {(event, task) for event, _, task in lines}
        for expected in [("worker_running", ""), ("starting", ""), ("task_running", "double"),
                         ("task_success", "double"), ("task_stopping", "double"), ("task_cancel", "gives_up"),
                         ("task_error", "sleepy")]:
            assert expected in events, expected
        serving = {pid for event, pid, _ in lines if event == "starting"}
        workers = {pid for event, pid, _ in lines if event.startswith("task_")}
        assert serving == {str(supervisor.pid)} and len(workers) == 2 and not (workers & serving)
        supervisor.send_signal(15)
        assert supervisor.wait(20) == 0
    final = {line.split(" ")[0] for line in log.read_text().splitlines()}
    assert {"worker_stopping", "stopping"} <= final


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_cancelling_queued_tasks_behind_a_busy_slot(flavour, tmp_path):
    app = served_app(flavour)
    with InProcessStack(app, concurrency=1) as stack:
        client = QueueTasks(name=app.name, broker_url=stack.url)
        started = tmp_path / "started"
        blocker = client.add_task("sync_cancellable", str(started), 0.5)
        wait_for(started.exists, 10, "the slot to be busy")
        markers = [tmp_path / f"never-{i}" for i in range(3)]
        queued = [client.add_task("never_runs", str(m)) for m in markers]
        assert [client.cancel(t.uuid, "not needed").status for t in queued] == ["cancel"] * 3
        assert blocker.wait_result(timeout=10).returning == "finished anyway"
        assert client.add_task("double", 2, timeout=10).returning == 4  # the slot is free again
        assert not any(m.exists() for m in markers)
        assert [client.get(t.uuid).cancel_reason for t in queued] == ["not needed"] * 3
        client.close()


def test_a_stuck_sync_task_gets_its_process_recycled():
    app_spec, name = FLAVOURS["sync"]
    with broker_process() as (url, _), worker_process(app_spec, url, env={"QTASKS_THREAD_STOP_GRACE": "0.3"}):
        client = QueueTasks(name=name, broker_url=url)
        [before] = wait_for_workers(client, 1)
        started = time.monotonic()
        task = client.add_task("blocking", 30, timeout=10)
        assert task.status == "error" and time.monotonic() - started < 5  # failed on time
        # the thread never returns: the process is replaced so the slot is not held forever
        def replaced() -> bool:
            pids = wait_for_workers(client, 1)
            return before not in pids

        wait_for(replaced, 20, "a fresh worker process")
        assert client.add_task("whoami", timeout=10).returning != before
        client.close()
