"""The engine end to end: the client API against the broker and worker actors (in this process, and
as the daemon with worker processes where processes matter)."""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.enums.task_status import TaskStatusEnum
from qtasks.inprocess import InProcessStack
from qtasks.schemas.task import Task
from tests.apps import basic
from tests.support import broker_process, wait_for_workers, worker_process


def test_round_trip_through_task_object(app):
    # Given the daemon and two worker processes serving tests.apps.basic
    # When a client adds a task and waits for it
    task = basic.echo.add_task("Hello", timeout=5)
    # Then the finished record comes back with the function's return value
    assert isinstance(task, Task)
    assert task.status == TaskStatusEnum.SUCCESS.value == "success"
    assert task.returning == "Hello"
    assert task.task_name == "echo"
    assert task.args == ["Hello"] and task.kwargs == {}
    assert task.attempts == 1
    assert task.updated_at >= task.created_at


def test_add_task_without_timeout_returns_the_stored_new_task(app):
    task = app.add_task("add", 2, b=3)
    assert task.status == "new"
    assert task.args == (2,) and task.kwargs == {"b": 3}
    assert task.priority == 2  # the registered task's default priority
    assert isinstance(task.uuid, uuid.UUID)
    finished = task.wait_result(timeout=5)
    assert finished.status == "success" and finished.returning == 5


def test_values_round_trip_through_msgpack(app):
    value = {"text": "привет", "n": 2**40, "f": 1.5, "none": None, "bytes": b"\x00\x01",
             "nested": [1, {"a": (1, 2)}], "flag": True}
    task = app.add_task("echo", value, timeout=5)
    # tuples come back as lists, as upstream's JSON did
    assert task.returning == {**value, "nested": [1, {"a": [1, 2]}]}


def test_async_task_runs_on_the_loop(app):
    assert app.add_task("async_echo", [1, 2], timeout=5).returning == [1, 2]


def test_error_task_stores_the_traceback(app):
    task = app.add_task("fail", "kaput", timeout=5)
    assert task.status == "error"
    assert task.returning is None
    assert task.traceback.strip().endswith("ValueError: kaput")
    assert "Traceback (most recent call last)" in task.traceback


def test_unknown_task_ends_in_error_naming_close_matches_and_workers_survive(app):
    task = app.add_task("ecoh", 1, timeout=5)
    assert task.status == "error"
    assert "unknown task 'ecoh'" in task.traceback
    assert "did you mean 'echo'" in task.traceback
    assert app.add_task("echo", "still alive", timeout=5).returning == "still alive"


def test_unpackable_result_is_an_error_naming_the_type(app):
    task = app.add_task("unpackable", timeout=5)
    assert task.status == "error"
    assert "returned a object" in task.traceback and "msgpack" in task.traceback


def test_timeout_returns_none_logs_the_uuid_and_the_result_is_fetchable_later(app, caplog):
    assert app.add_task("nap", 0.5, "late", timeout=0.05) is None
    [line] = [r.getMessage() for r in caplog.records if "did not finish" in r.getMessage()]
    late_uuid = line.split("(nap ")[1].split(")")[0]
    assert "within 0.05 s" in line and "app.get(uuid)" in line
    # the task keeps running and its result can be fetched with the logged uuid
    finished = app.get(late_uuid).wait_result(timeout=5)
    assert finished.status == "success" and finished.returning == "late"
    assert app.get(uuid.UUID(late_uuid)).returning == "late"


def test_wait_result_times_out_with_none_then_succeeds(app):
    task = app.add_task("nap", 0.4, "slow")
    assert task.wait_result(timeout=0.05) is None
    assert task.wait_result(timeout=5).returning == "slow"


def test_get_unknown_uuid_is_none_and_bad_uuid_is_value_error(app):
    assert app.get(uuid.uuid4()) is None
    with pytest.raises(ValueError):
        app.get("not-a-uuid")


def test_batch_submission_returns_every_result_in_order(app):
    results = app.add_tasks([basic.add(i, b=1) for i in range(200)], timeout=10)
    assert [r.returning for r in results] == [i + 1 for i in range(200)]


def test_registration_keeps_metadata_and_extra_kwargs():
    schema = basic.app.tasks["add"]
    assert schema.priority == 2 and schema.description == "adds" and schema.tags == ["math"]
    assert schema.extra == {"flavour": "plain"}
    assert basic.add.extra == {"flavour": "plain"}
    with pytest.raises(ValueError, match="already registered"):
        basic.app.task(name="add")(lambda: None)


def test_one_app_is_shared_by_many_threads(app):
    def submit(i: int) -> int:
        return app.add_task("add", i, b=i, timeout=10).returning

    with ThreadPoolExecutor(16) as pool:
        assert sorted(pool.map(submit, range(200))) == sorted(2 * i for i in range(200))


def test_async_face_round_trip_and_concurrency(basic_stack):
    async def main() -> None:
        aapp = qtasks.asyncio.QueueTasks(name="tests", broker_url=basic_stack.url)
        task = await aapp.add_task("echo", "Hello", timeout=5)
        assert task.status == "success" and task.returning == "Hello"
        results = await asyncio.gather(*(aapp.add_task("add", i, timeout=10) for i in range(100)))
        assert [r.returning for r in results] == list(range(100))
        assert await aapp.ping() is True
        new = await aapp.add_task("echo", 1)
        assert new.status == "new"
        assert (await aapp.get(new.uuid)) is not None
        assert (await new.wait_result_async(timeout=5)).returning == 1
        aapp.close()

    asyncio.run(main())


def test_async_app_served_by_its_own_workers():
    with broker_process() as (url, _), worker_process("tests.apps.aio:app", url, processes=1):
        client = QueueTasks(name="tests-async", broker_url=url)
        wait_for_workers(client, 1)

        async def main() -> None:
            from tests.apps import aio

            aio.app.broker = client.broker
            task = await aio.echo.add_task("Hello", timeout=5)
            assert task.returning == "Hello"
            assert (await aio.app.add_task("sync_pid", timeout=5)).returning != os.getpid()
            assert (await aio.app.add_task("boom", timeout=5)).traceback.strip().endswith(
                "RuntimeError: async boom")

        asyncio.run(main())
        client.close()


def test_eight_processes_all_take_work():
    with broker_process() as (url, _), worker_process("tests.apps.basic:app", url, processes=8,
                                                      env={"QTASKS_MAX_TASKS_PROCESS": "2"}):
        client = QueueTasks(name="tests", broker_url=url)
        pids = wait_for_workers(client, 8, timeout=60)
        # 16 slots, 16 tasks holding a slot for a moment: every process must get two
        results = client.add_tasks([("whoami", [0.3], {}) for _ in range(16)], timeout=20)
        ran_on = {r.returning for r in results}
        assert ran_on == pids and len(ran_on) == 8
        client.close()


def test_priority_order_with_one_slot(tmp_path):
    order = tmp_path / "order.txt"
    gate = tmp_path / "gate"
    with InProcessStack(basic.app, concurrency=1):
        client = basic.app
        # Given the only slot is held busy
        blocker = client.add_task("wait_for_file", str(gate))
        # When tasks of mixed priorities queue up behind it
        submitted = [("p5-a", 5), ("p1-a", 1), ("p9", 9), ("p1-b", 1), ("p5-b", 5), ("p0", 0)]
        for label, priority in submitted:
            client.add_task("record", str(order), label, priority=priority)
        gate.write_text("go")
        assert blocker.wait_result(timeout=10).status == "success"
        last = client.add_task("record", str(order), "last", priority=99, timeout=10)
        assert last.status == "success"
        # Then they ran lowest number first, FIFO within a priority
        assert order.read_text().split() == ["p0", "p1-a", "p1-b", "p5-a", "p5-b", "p9", "last"]
