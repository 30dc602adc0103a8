"""Every import path of spec §0 exists, and the small compatibility pieces behind them work."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys

import pytest

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.contexts import SyncContext
from qtasks.mixins import AsyncPluginMixin, SyncPluginMixin
from qtasks.plugins.base import BasePlugin
from qtasks.plugins.states import AsyncState, SyncState
from qtasks.plugins.states.registry import AsyncStateRegistry, SyncStateRegistry
from qtasks.results import AsyncResult, SyncResult
from tests.support import ROOT

PATHS = {
    "qtasks": ["QueueTasks", "AsyncRouter", "SyncRouter", "shared_task", "Depends", "__version__"],
    "qtasks.asyncio": ["QueueTasks"], "qtasks.base": ["BaseQueueTasks"], "qtasks.base.qtasks": ["BaseQueueTasks"],
    "qtasks.registries": ["AsyncTask", "SyncTask", "TaskRegistry"], "qtasks.registries.async_task_decorator": [],
    "qtasks.registries.sync_task_decorator": [], "qtasks.registries.task_registry": [],
    "qtasks.routers": ["AsyncRouter", "SyncRouter"], "qtasks.results": ["AsyncResult", "SyncResult"],
    "qtasks.schemas": ["GlobalConfigSchema", "TaskExecSchema", "TaskStatusNewSchema", "TaskStatusProcessSchema",
                       "TaskStatusSuccessSchema", "TaskStatusErrorSchema", "TestConfig"],
    "qtasks.schemas.task": ["Task"], "qtasks.schemas.task_exec": ["TaskExecSchema", "TaskPrioritySchema"],
    "qtasks.schemas.task_status": ["TaskStatusCancelSchema", "BaseTaskStatusSchema"],
    "qtasks.schemas.task_cls": ["BaseTaskCls", "AsyncTaskCls", "SyncTaskCls"], "qtasks.schemas.argmeta": ["ArgMeta"],
    "qtasks.schemas.inits": ["InitsExecSchema"], "qtasks.schemas.global_config": ["GlobalConfigSchema"],
    "qtasks.schemas.test": ["TestConfig"], "qtasks.enums": ["TaskStatusEnum"], "qtasks.enums.task_status": [],
    "qtasks.configs": ["QueueConfig"], "qtasks.configs.config": ["QueueConfig"],
    "qtasks.configs.base": ["BaseGlobalConfig"], "qtasks.brokers.base": ["BaseBroker"],
    "qtasks.storages.base": ["BaseStorage"], "qtasks.workers": ["AsyncWorker", "SyncThreadWorker"],
    "qtasks.workers.base": ["BaseWorker"], "qtasks.starters": ["AsyncStarter", "SyncStarter"],
    "qtasks.starters.base": ["BaseStarter"], "qtasks.executors": ["AsyncTaskExecutor", "SyncTaskExecutor"],
    "qtasks.executors.base": ["BaseTaskExecutor"], "qtasks.middlewares": ["TaskMiddleware"],
    "qtasks.middlewares.base": ["BaseMiddleware"], "qtasks.contexts": ["AsyncContext", "SyncContext"],
    "qtasks.events": ["AsyncEvents", "SyncEvents"], "qtasks.events.base": ["BaseEvents"],
    "qtasks.events.events": ["OnEvents"], "qtasks.exc": ["TaskCancelError", "TaskPluginTriggerError"],
    "qtasks.exc.task": [], "qtasks.exc.plugins": [],
    "qtasks.plugins": ["BasePlugin", "AsyncDependsPlugin", "SyncDependsPlugin", "Depends", "AsyncPydanticWrapperPlugin",
                       "SyncPydanticWrapperPlugin", "AsyncRetryPlugin", "SyncRetryPlugin", "AsyncState", "SyncState",
                       "AsyncStatePlugin", "SyncStatePlugin", "AsyncTestPlugin", "SyncTestPlugin"],
    "qtasks.plugins.base": ["BasePlugin"],
    "qtasks.plugins.depends": ["Depends", "ScopeEnum", "AsyncDependsPlugin", "SyncDependsPlugin"],
    "qtasks.plugins.depends.class_depends": [], "qtasks.plugins.depends.enums.scope": [],
    "qtasks.plugins.states": ["AsyncState", "SyncState", "AsyncStatePlugin", "SyncStatePlugin"],
    "qtasks.plugins.states.fsm": [], "qtasks.plugins.states.registry": ["AsyncStateRegistry", "SyncStateRegistry"],
    "qtasks.plugins.testing": ["AsyncTestPlugin", "SyncTestPlugin"], "qtasks.plugins.testing.async_test": [],
    "qtasks.plugins.testing.sync_test": [], "qtasks.timers": ["AsyncTimer", "SyncTimer"],
    "qtasks.timers.base": ["BaseTimer"], "qtasks.stats": ["AsyncStats", "SyncStats"],
    "qtasks.stats.inspect.inspect": ["InspectStats"], "qtasks.stats.inspect.base": ["UtilsInspectStats"],
    "qtasks.stats.base": ["BaseStats"], "qtasks.tests": ["AsyncTestCase", "SyncTestCase"],
    "qtasks.tests.base": ["BaseTestCase"],
    "qtasks.tests.async_classes": ["AsyncTestBroker", "AsyncTestWorker", "AsyncTestStorage", "AsyncTestGlobalConfig"],
    "qtasks.tests.sync_classes": ["SyncTestBroker", "SyncTestWorker", "SyncTestStorage", "SyncTestGlobalConfig"],
    "qtasks.utils": ["get_app", "shared_task", "AsyncTaskUtils", "_build_task"],
    "qtasks.utils.tasks": ["AsyncTaskUtils"], "qtasks.utils.tasks.async_task_utils": ["AsyncTaskUtils"],
    "qtasks.utils.tasks.sync_task_utils": ["SyncTaskUtils"], "qtasks.logs": ["Logger"],
    "qtasks.mixins": ["AsyncPluginMixin", "SyncPluginMixin"],
    "qtasks.contrib.redis": ["AsyncRedisCommandQueue", "SyncRedisCommandQueue"],
    "qtasks.types": ["P", "R", "T", "TAsyncFlag"], "qtasks._state": ["app_main", "log_main"],
    # the module paths upstream's API reference cites
    "qtasks.routers.async_router": ["AsyncRouter"], "qtasks.routers.sync_router": ["SyncRouter"],
    "qtasks.middlewares.task": ["TaskMiddleware"], "qtasks.starters.async_starter": ["AsyncStarter"],
    "qtasks.starters.sync_starter": ["SyncStarter"], "qtasks.timers.async_timer": ["AsyncTimer"],
    "qtasks.timers.sync_timer": ["SyncTimer"], "qtasks.executors.async_task_executor": ["AsyncTaskExecutor"],
    "qtasks.executors.sync_task_executor": ["SyncTaskExecutor"], "qtasks.results.async_result": ["AsyncResult"],
    "qtasks.results.sync_result": ["SyncResult"], "qtasks.contexts.async_context": ["AsyncContext"],
    "qtasks.contexts.sync_context": ["SyncContext"], "qtasks.workers.async_worker": ["AsyncWorker"],
    "qtasks.workers.sync_worker": ["SyncThreadWorker"],
}


@pytest.mark.parametrize("module", sorted(PATHS))
def test_the_import_path_exists(module):
    imported = importlib.import_module(module)
    assert [name for name in PATHS[module] if not hasattr(imported, name)] == []


def test_the_django_contrib_says_what_to_install_without_django():
    proc = subprocess.run([sys.executable, "-c", "import qtasks.contrib.django"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert "ImportError: Install with `pip install Django` to use this contrib." in proc.stderr


def test_ctx_get_component_returns_storage_and_global_config():
    app = QueueTasks(name="components")
    ctx = SyncContext(app=app)
    assert ctx.get_component("storage") is app.broker.storage is not None
    assert ctx.get_component("global_config") is app.global_config
    assert app.worker.config is app.config


class Echo(BasePlugin):
    def trigger(self, name, *args, **kwargs):
        return {"kw": {**kwargs["kw"], "seen": name}, "note": "hi"}


def test_plugin_mixins_fire_like_components():
    class Sync(SyncPluginMixin):
        plugins: dict = {}

    class Async(AsyncPluginMixin):
        pass

    sync, aio = Sync(), Async()
    sync.plugins = {}
    sync.add_plugin(Echo(), ["mine"])
    aio.add_plugin(Echo())
    assert sync._plugin_trigger("mine", kw={}, return_last=True) == {"kw": {"seen": "mine"}, "note": "hi"}
    assert sync._plugin_trigger("other", kw={}) == []
    assert asyncio.run(aio._plugin_trigger("any", kw={"a": 1})) == [{"kw": {"a": 1, "seen": "any"}, "note": "hi"}]


class Tally(SyncState):
    pass


class AsyncTally(AsyncState):
    pass


def test_results_and_state_registries_against_a_served_app(basic_stack):
    from tests.apps import basic

    task = basic.app.add_task("add", 2, 3)
    assert SyncResult(uuid=task.uuid, app=basic.app).result(timeout=10).returning == 5
    assert SyncResult(uuid="0f4b3f0e-2b8f-4c55-a8e6-8d1c0b8f8e11", app=basic.app).result(timeout=1) is None
    with pytest.raises(ValueError, match=r"SyncResult\(uuid=task.uuid\)"):
        SyncResult(app=basic.app).result()
    registry = SyncStateRegistry(basic.app)
    registry.set(Tally, "n", 1)
    assert registry.update(Tally, {"m": 2}) == {"n": 1, "m": 2}
    assert Tally(basic.app).get("m") == 2
    registry.delete(Tally, "n")
    assert registry.get_all(Tally) == {"m": 2}
    registry.clear(Tally)
    assert registry.get(Tally, "m", "gone") == "gone"

    async def on_async_face():
        aio = qtasks.asyncio.QueueTasks(name=basic.app.name, broker_url=basic_stack.url)
        try:
            added = await aio.add_task("add", 1, 1)
            assert (await AsyncResult(uuid=added.uuid, app=aio).result(timeout=10)).returning == 2
            await AsyncStateRegistry(aio).set(AsyncTally, "k", "v")
            assert await AsyncStateRegistry(aio).get(AsyncTally, "k") == "v"
        finally:
            aio.close()

    asyncio.run(on_async_face())


def test_redis_command_queues_run_commands_in_order_and_log_failures(caplog):
    from qtasks.contrib.redis import AsyncRedisCommandQueue, SyncRedisCommandQueue

    class FakeRedis:
        def __init__(self):
            self.calls = []

        def hset(self, *args):
            self.calls.append(args)

        def fail(self):
            raise ConnectionError("down")

        async def aset(self, *args):
            self.calls.append(args)

    client = FakeRedis()
    commands = SyncRedisCommandQueue(client)
    commands.execute("hset", "k", "f", 1)
    commands.execute("fail")
    commands.execute("hset", "k", "g", 2)
    commands.stop()
    assert client.calls == [("k", "f", 1), ("k", "g", 2)]
    assert "redis command fail failed" in caplog.text

    async def run_async():
        queue = AsyncRedisCommandQueue(client)
        await queue.execute("aset", "x")
        await queue.execute("hset", "y")
        await queue.stop()

    asyncio.run(run_async())
    assert client.calls[-2:] == [("x",), ("y",)]


def test_a_routers_plugins_join_the_app_that_includes_it():
    from qtasks import SyncRouter

    router = SyncRouter()
    plugin = Echo()
    router.add_plugin(plugin, ["qtasks_get"])

    @router.task
    def routed() -> None:
        pass

    app = QueueTasks(name="routed-plugins")
    app.include_router(router)
    assert app.plugins["qtasks_get"] == [plugin]
