"""Depends: provider kinds, teardown order and timing, detection, and real per-process scopes."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Optional

import anyio
import pytest

import qtasks
import qtasks.plugins
import qtasks.plugins.depends
from qtasks import QueueTasks
from qtasks.executors.teardown import close
from qtasks.plugins.depends import Depends, ScopeEnum
from qtasks.plugins.depends.plugin import depends_parameters
from qtasks.plugins.depends.scopes import DependencyScopes, provide
from qtasks.plugins.states import AsyncState
from qtasks.plugins.states.plugin import state_parameters
from tests.apps import deps as deps_app
from tests.support import broker_process, read_line_matching, wait_for, wait_for_workers, worker_process


def test_import_paths():
    assert qtasks.Depends is qtasks.plugins.Depends is qtasks.plugins.depends.Depends
    assert qtasks.plugins.depends.ScopeEnum.WORKER.value == "worker"
    assert Depends(print, scope="worker").scope == "worker" == Depends(print, ScopeEnum.WORKER).scope
    with pytest.raises(ValueError, match="unknown Depends scope 'process'"):
        Depends(print, scope="process")
    with pytest.raises(TypeError, match="callable provider"):
        Depends(42)


# --------------------------------------------------------------------------- providers


def run(coro_fn):
    return anyio.run(coro_fn)


def test_every_provider_kind_gives_its_value_and_closes_newest_first():
    log: list[str] = []

    def plain():
        return "plain"

    async def coroutine():
        return "coroutine"

    def generator():
        yield "generator"
        log.append("generator closed")

    async def async_generator():
        yield "async generator"
        log.append("async generator closed")

    @contextmanager
    def sync_cm():
        yield "contextmanager"
        log.append("contextmanager closed")

    @asynccontextmanager
    async def async_cm():
        yield "asynccontextmanager"
        log.append("asynccontextmanager closed")

    def returns_awaitable():
        return coroutine()

    class Manager:
        def __enter__(self):
            return "manager"

        def __exit__(self, *exc):
            log.append("manager closed")

    async def main() -> None:
        teardowns: list = []
        values = [await provide(p, teardowns) for p in
                  (plain, coroutine, generator, async_generator, sync_cm, async_cm, returns_awaitable, Manager)]
        assert values == ["plain", "coroutine", "generator", "async generator", "contextmanager",
                          "asynccontextmanager", "coroutine", "manager"]
        assert log == []
        assert await close(teardowns, "test") is None
        assert log == ["manager closed", "asynccontextmanager closed", "contextmanager closed",
                       "async generator closed", "generator closed"]

    run(main)


def test_teardown_runs_the_code_after_yield_even_when_the_task_failed_or_was_cancelled():
    log: list[str] = []

    async def provider():
        yield "value"
        log.append("after yield")  # no try/finally: it must still run

    async def main() -> None:
        teardowns: list = []
        with anyio.CancelScope() as scope:
            await provide(provider, teardowns)
            scope.cancel()
            await anyio.sleep(1)  # cancelled here
        assert scope.cancelled_caught
        await close(teardowns, "test")  # shielded: runs although we were cancelled
        assert log == ["after yield"]

    run(main)


def test_a_failing_teardown_is_reported_after_the_others_ran():
    log: list[str] = []

    def good():
        yield 1
        log.append("good closed")

    def bad():
        yield 2
        raise OSError("disk gone")

    async def main() -> None:
        teardowns: list = []
        await provide(good, teardowns)
        await provide(bad, teardowns)
        failure = await close(teardowns, "test")
        assert isinstance(failure, OSError) and log == ["good closed"]

    run(main)


def test_worker_scope_is_made_once_under_concurrency_and_closed_by_the_scopes():
    calls: list[str] = []

    async def slow_resource():
        calls.append("made")
        await anyio.sleep(0.05)
        yield object()
        calls.append("closed")

    async def main() -> None:
        scopes = DependencyScopes()
        dep = Depends(slow_resource, scope="worker")
        values = await asyncio.gather(*(scopes.resolve(dep, []) for _ in range(20)))
        assert len({id(v) for v in values}) == 1 and calls == ["made"]
        task_values = [await scopes.resolve(Depends(slow_resource), teardowns := []) for _ in range(2)]
        assert len({id(v) for v in task_values}) == 2
        await close(teardowns, "task")
        await scopes.close()
        assert calls.count("closed") == 2 and calls[-1] == "closed"

    run(main)


def test_a_failing_worker_scoped_provider_is_retried_by_the_next_task():
    attempts: list[int] = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("not yet")
        return "ok"

    async def main() -> None:
        scopes = DependencyScopes()
        dep = Depends(flaky, scope="worker")
        with pytest.raises(ConnectionError):
            await scopes.resolve(dep, [])
        assert await scopes.resolve(dep, []) == "ok"

    run(main)


# --------------------------------------------------------------------------- detection


class Db:
    pass


def get_db():
    return Db()


class SomeState(AsyncState):
    pass


def test_detection_forms():
    def by_default(a, db=Depends(get_db)):
        pass

    def by_annotation(a, db: Depends(get_db)):
        pass

    def by_annotated(a, db: Annotated[Db, "meta", Depends(get_db)]):
        pass

    def with_state(a, state: SomeState, maybe: Optional[SomeState] = None, wrapped: Annotated[SomeState, 1] = None):
        pass

    for func in (by_default, by_annotation, by_annotated):
        [(param, depends)] = depends_parameters(func)
        assert (param.name, param.position, depends.func) == ("db", 1, get_db)
    assert [(p.name, state) for p, state in state_parameters(with_state)] == [
        ("state", SomeState), ("maybe", SomeState), ("wrapped", SomeState)]
    assert depends_parameters(with_state) == () and state_parameters(by_default) == ()
    [(found, _)] = depends_parameters(by_default)
    assert found.supplied([1, "given"], {}) and found.supplied([1], {"db": 2}) and not found.supplied([1], {})


def test_detection_with_future_annotations_module():
    schema = deps_app.app.tasks
    assert depends_parameters(schema["fails_after_dependency"].func)[0][1].func is deps_app.task_marker
    assert depends_parameters(schema["succeeds_with_dependency"].func)[0][1].func is deps_app.task_marker
    assert state_parameters(schema["count"].func)[0][1] is deps_app.Counter
    assert state_parameters(schema["remember"].func)[0][1] is deps_app.Memo


# --------------------------------------------------------------------------- end to end


def test_seed_example_prints_the_task_output_then_close(tmp_path):
    with broker_process() as (url, _), worker_process("tests.apps.seeds:app", url, processes=2,
                                                      env={"PYTHONUNBUFFERED": "1"},
                                                      stdout=subprocess.PIPE) as workers:
        client = QueueTasks(name="seeds", broker_url=url)
        wait_for_workers(client, 2)
        task = client.add_task("test_depends", timeout=10)
        assert task.status == "success", task.traceback
        read_line_matching(workers, r"^Вызов выполнен$", 10)
        read_line_matching(workers, r"^close\.\.\.$", 10)  # after the task's own line
        client.close()


def test_worker_scope_gives_one_instance_per_process_and_closes_it_at_shutdown(tmp_path):
    with broker_process() as (url, _):
        client = QueueTasks(name="deps", broker_url=url)
        with worker_process("tests.apps.deps:app", url, processes=2,
                            env={"QTASKS_TEST_MARKERS": str(tmp_path)}) as workers:
            wait_for_workers(client, 2)
            results = [t.returning for t in client.add_tasks([("which_resource", [], {})] * 40, timeout=30)]
            per_process: dict[int, set[str]] = {}
            for pid, resource_id, calls in results:
                per_process.setdefault(pid, set()).add(resource_id)
                assert calls == 1  # the provider ran once in that process
            assert len(per_process) == 2 and all(len(ids) == 1 for ids in per_process.values())
            workers.send_signal(15)
            assert workers.wait(20) == 0
        closed = {p.name.split("-")[-1]: p.read_text() for p in tmp_path.glob("worker-closed-*")}
        assert {int(pid) for pid in closed} == set(per_process)
        assert {closed[str(pid)] for pid in per_process} == {ids.pop() for ids in per_process.values()}
        client.close()


def test_task_scoped_teardown_runs_after_success_failure_and_cancel(tmp_path):
    markers = tmp_path / "markers.txt"
    with broker_process() as (url, _), worker_process("tests.apps.deps:app", url,
                                                      env={"QTASKS_TEST_MARKER_FILE": str(markers)}):
        client = QueueTasks(name="deps", broker_url=url)
        wait_for_workers(client, 1)
        failed = client.add_task("fails_after_dependency", timeout=10)
        assert failed.status == "error" and "failed holding task" in failed.traceback
        cancelled = client.add_task("cancels_after_dependency", timeout=10)
        assert cancelled.status == "cancel" and cancelled.cancel_reason == "cancelled holding task"
        assert client.add_task("succeeds_with_dependency", timeout=10).returning == "task"
        # a caller's own value is never replaced
        assert client.add_task("succeeds_with_dependency", "mine", timeout=10).returning == "mine"
        wait_for(lambda: markers.exists() and markers.read_text().count("closed task") == 3, 10,
                 "three teardowns")
        client.close()
