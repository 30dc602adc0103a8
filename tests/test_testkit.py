"""The test kit: ``SyncTestCase``/``AsyncTestCase`` with each ``TestConfig``, and the pytest fixture."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from qtasks.plugins.base import BasePlugin
from qtasks.schemas.test import TestConfig
from qtasks.tests import AsyncTestCase, SyncTestCase
from qtasks.tests.async_classes import AsyncTestBroker, AsyncTestGlobalConfig, AsyncTestStorage, AsyncTestWorker
from qtasks.tests.sync_classes import SyncTestBroker, SyncTestGlobalConfig, SyncTestStorage, SyncTestWorker
from tests.apps import kit
from tests.support import broker_process


def test_presets():
    every = ("worker", "broker", "storage", "global_config", "plugins")
    flags = lambda config: tuple(getattr(config, name) for name in every)  # noqa: E731
    assert flags(TestConfig()) == (False,) * 5
    assert flags(TestConfig.full()) == (True,) * 5
    assert flags(TestConfig.only_worker()) == (True, False, False, False, False)
    assert flags(TestConfig.only_worker(plugins=True)) == (True, False, False, False, True)
    assert flags(TestConfig.only_broker()) == (False, True, False, False, False)
    assert flags(TestConfig.full_broker()) == (False, True, True, True, True)


def test_full_with_nothing_running_serves_the_app_in_process_sync():
    app = kit.make("sync")
    url = app.broker.url
    case = SyncTestCase(app, name="kit")
    case.settings(TestConfig.full())
    try:
        task = case.add_task("test", 5, timeout=10)
        assert (task.status, task.returning) == ("success", "User 5 saved")  # through Depends
        assert case.get(task.uuid).returning == "User 5 saved"
        assert app.get(task.uuid).status == "success"  # the app's own calls reach the same broker
        assert case.add_task("error_task", timeout=10).status == "error"
        assert case.add_task("slow", 0.5, timeout=0.05) is None
        retried = case.add_task("flaky", "a", timeout=10)
        assert (retried.returning, retried.retry) == ("ok after 3", 0)
        assert case.add_task("tagged", timeout=10).returning == "from middleware"
        assert [case.add_task("visit", timeout=10).returning for _ in range(2)] == [1, 2]  # State
        assert case.get("9f4b3f0e-2b8f-4c55-a8e6-8d1c0b8f8e11") is None
    finally:
        case.stop()
    assert app.broker.url == url


def test_full_with_nothing_running_serves_the_app_in_process_async():
    app = kit.make("async")
    case = AsyncTestCase(app, name="kit")
    case.settings(TestConfig.full())

    async def scenario() -> None:
        try:
            task = await case.add_task("test", 5, timeout=10)
            assert (task.status, task.returning) == ("success", "User 5 saved")
            assert (await case.get(task.uuid)).status == "success"
            assert (await app.get(task.uuid)).status == "success"
            assert (await case.add_task("error_task", timeout=10)).status == "error"
            assert await case.add_task("slow", 0.5, timeout=0.05) is None
            assert (await case.add_task("visit", timeout=10)).returning == 1
        finally:
            await case.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("face", ["sync", "async"])
def test_only_worker_runs_the_task_here_through_the_worker_pipeline(face):
    app = kit.make(face)
    case = (SyncTestCase if face == "sync" else AsyncTestCase)(app)
    case.settings(TestConfig.only_worker())

    def call(*args: Any, **kwargs: Any) -> Any:
        result = case.add_task(*args, **kwargs)
        return asyncio.run(result) if face == "async" else result

    assert isinstance(app.broker, SyncTestBroker)  # no broker: nothing is sent anywhere
    assert call("test", 7).returning == "User 7 saved"
    assert call("tagged").returning == "from middleware"
    failed = call("error_task")
    assert failed.status == "error" and "ZeroDivisionError" in failed.traceback
    retried = call("flaky", "b")
    assert (retried.status, retried.returning, retried.retry) == ("success", "ok after 3", 0)
    assert retried.retry_parent_uuid is not None
    assert call("missing").status == "error"


def test_only_broker_stores_tasks_that_nothing_runs():
    app = kit.make("sync")
    case = SyncTestCase(app)
    case.settings(TestConfig.only_broker())
    try:
        task = case.add_task("test", 1)
        assert task.status == "new"
        assert case.get(task.uuid).status == "new"
        assert isinstance(app.worker, SyncTestWorker) and isinstance(app.global_config, SyncTestGlobalConfig)
        assert isinstance(app.broker.storage, SyncTestStorage)
    finally:
        case.stop()


def test_nothing_enabled_says_so(capsys):
    app = kit.make("sync")
    case = SyncTestCase(app, name="empty")
    case.settings(TestConfig())
    assert case.add_task("test", 1) is None
    assert case.get("9f4b3f0e-2b8f-4c55-a8e6-8d1c0b8f8e11") is None
    out = capsys.readouterr().out
    assert "[SyncTestCase: empty] Be sure to enable Worker or Broker!" in out


def test_async_stubs_are_awaitable_and_stop_puts_the_real_components_back():
    app = kit.make("async")
    real = (app.broker, app.worker, app.global_config, app.broker.storage)
    case = AsyncTestCase(app)
    case.settings(TestConfig())
    assert isinstance(app.worker, AsyncTestWorker) and isinstance(app.global_config, AsyncTestGlobalConfig)
    assert isinstance(app.broker, AsyncTestBroker) and isinstance(app.broker.storage, AsyncTestStorage)
    assert asyncio.run(app.global_config.get("main", "status")) is None
    assert asyncio.run(app.add_task("test", 1)).status == "new"  # the stub broker stores nothing
    asyncio.run(case.stop())
    assert (app.broker, app.worker, app.global_config, app.broker.storage) == real


class Marker(BasePlugin):
    def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def test_plugins_false_removes_the_users_plugins_and_keeps_the_built_in_ones():
    app = kit.make("sync")
    app.add_plugin(Marker(), component="worker")
    app.add_plugin(Marker())
    builtin = {p.name for p in app.worker.builtin_plugins}
    case = SyncTestCase(app)
    case.settings(TestConfig.only_worker(plugins=False))
    names = {p.name for found in app.worker.plugins.values() for p in found}
    assert names == builtin and app.plugins == {"Globals": []}
    assert case.add_task("test", 3).returning == "User 3 saved"  # Depends is a built-in plugin
    case.stop()
    assert "Marker" in {p.name for found in app.worker.plugins.values() for p in found}


def test_full_uses_a_broker_that_listens():
    app = kit.make("sync")
    with broker_process() as (url, _):
        app.broker.use_url(url)
        case = SyncTestCase(app)
        case.settings(TestConfig.full())
        try:
            task = case.add_task("test", 1)  # no worker serves this app there: it waits, stored
            assert task.status == "new" and app.broker_stats()["queues"] == {app.name: 1}
            assert case._stack is None and app.broker.url == url
        finally:
            case.stop()
            app.close()


def test_start_in_background_serves_with_worker_actors():
    app = kit.make("sync")
    case = SyncTestCase(app)
    case.settings(TestConfig.full())
    case.start_in_background(num_workers=2)
    try:
        assert len(app.broker_stats()["workers"]) == 2
        assert app.add_task("test", 9, timeout=10).returning == "User 9 saved"
    finally:
        case.stop()


def test_the_pytest_fixture_serves_an_app_for_one_test(qtasks_serve):
    app = kit.make("sync")
    stack = qtasks_serve(app, workers=2)
    assert app.broker.url == stack.url
    assert app.add_task("test", 4, timeout=10).returning == "User 4 saved"
