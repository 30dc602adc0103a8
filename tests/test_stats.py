"""Stats and inspect: describing an app and its tasks, in this process and from the command line."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from typing import Any

import pytest

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.plugins.base import BasePlugin
from qtasks.registries import SyncTask
from qtasks.stats import AsyncStats, SyncStats
from qtasks.stats.base import BaseStats
from qtasks.stats.inspect.base import UtilsInspectStats
from qtasks.stats.inspect.inspect import InspectStats
from qtasks.tasks.registry import TaskRegistry
from qtasks.tasks.spec import TaskExecSchema, TaskOptions
from tests.apps import basic
from tests.support import popen, stop_process

APP_LABELS = ["Name", "Method", "Version", "Config", "Tasks Count", "Routers Count", "Plugins Count", "Broker",
              "Worker", "Starter", "Storage", "GlobalConfig", "Log", "Init Count"]
RULE = "-" * 50
BASIC_TASKS = {task.task_name for task in vars(basic).values() if isinstance(task, SyncTask)}
"""What ``tests.apps.basic`` declares (``basic.app.tasks`` also holds shared tasks once served here)."""


class Before:
    def __init__(self, executor: Any) -> None:
        self.executor = executor


def make_app(flavour: str = "sync") -> Any:
    """An app with one task of each shape the inspect output distinguishes."""
    app = QueueTasks(name="stats") if flavour == "sync" else qtasks.asyncio.QueueTasks(name="stats-async")

    @app.task(priority=3, description="sums", tags=["math", "fast"])
    def total(a: int, b, *more, scale: float = 1.0, mode, **options):
        return (a + b + sum(more)) * scale

    @app.task(retry=2, retry_on_exc=[ValueError], decode=str, middlewares_before=[Before], owner="ops")
    async def fetch(url):
        return url

    @app.task(echo=True)
    def steps(self, count=3):
        yield from range(count)

    @app.events.on.starting()
    def announce(**_: Any) -> None:
        pass

    return app


def labels(block: str) -> dict[str, str]:
    """``label: value`` lines of a text block -> {label: value} (checking the padding on the way)."""
    found = {}
    for line in block.splitlines():
        if line == RULE or line.startswith(" * "):
            continue
        label, sep, value = line.partition(": ")
        assert sep and len(label) == 26, line
        found[label.rstrip()] = value
    return found


def blocks(text: str) -> list[str]:
    assert text.endswith(RULE)
    return [block.strip("\n") for block in text.split(RULE)[:-1]]


class Recorder(BasePlugin):
    def __init__(self, name: str = "recorder") -> None:
        super().__init__(name)
        self.seen: list[Any] = []
        self.handlers = {"stats_inspect": self.stats_inspect}

    def stats_inspect(self, stats: Any) -> None:
        self.seen.append(stats)


class AsyncRecorder(Recorder):
    async def stats_inspect(self, stats: Any) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        self.seen.append(stats)


class Broken(BasePlugin):
    def trigger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("plugin bug")


# in this process: the app ----------------------------------------------------------------------

@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_app_text_lists_the_upstream_labels_padded_to_26_and_ends_with_a_rule(flavour):
    app = make_app(flavour)

    text = SyncStats(app).inspect().app()

    assert text.splitlines()[-1] == RULE
    info = labels(text)
    assert list(info) == APP_LABELS
    assert info["Name"] == app.name
    assert info["Method"] == flavour
    assert info["Version"] == qtasks.__version__
    assert info["Config"] == str(app.config)
    assert info["Tasks Count"] == str(len(app.tasks) + len(set(TaskRegistry.all_tasks()) - set(app.tasks)))
    assert info["Routers Count"] == "0"
    assert info["Broker"] == type(app.broker).__name__ and info["Worker"] == type(app.worker).__name__
    assert info["Starter"] == "—"  # not serving
    assert info["Log"] == "Logger"
    assert info["Init Count"] == "1"  # the one event handler


def test_app_json_holds_the_same_facts():
    app = make_app()
    inspection = SyncStats(app).inspect()

    data = json.loads(inspection.app(json=True))

    assert list(data) == APP_LABELS
    assert data["Name"] == "stats" and data["Method"] == "sync" and data["Init Count"] == 1
    assert {k: str(v) for k, v in data.items()} == labels(inspection.app())


def test_plugins_are_counted_once_each_over_every_component():
    app = make_app()
    before = json.loads(SyncStats(app).inspect().app(json=True))["Plugins Count"]

    app.worker.add_plugin(Recorder(), ["task_executor_before_execute", "worker_execute_before"])

    after = json.loads(SyncStats(app).inspect().app(json=True))["Plugins Count"]
    assert after == before + 1


def test_routers_are_counted():
    app = make_app()
    router = qtasks.SyncRouter()

    @router.task
    def routed():
        return 1

    app.include_router(router)

    assert labels(SyncStats(app).inspect().app())["Routers Count"] == "1"


# in this process: tasks ------------------------------------------------------------------------

def test_a_task_block_reads_the_options_and_the_signature():
    app = make_app()

    info = labels(SyncStats(app).inspect().task("total"))

    assert info == {
        "Task nane": "total",  # upstream's label, typo included
        "Priority": "3",
        "Description": "sums",
        "Tags": "math, fast",
        "Awaiting": "False",
        "Generating": "False",
        "Task Self": "False",
        "Args": "a: int, b, *more",
        "Kwargs": "scale: float=1.0, mode=required, **options=...",
    }


def test_optional_labels_appear_only_when_set():
    app = make_app()
    inspection = SyncStats(app).inspect()

    fetch = labels(inspection.task("fetch"))
    steps = labels(inspection.task("steps"))

    assert fetch["Awaiting"] == "True" and fetch["Args"] == "url" and fetch["Kwargs"] == "—"
    assert fetch["Retry Count"] == "2"
    assert fetch["Retry on Exception"] == "[<class 'ValueError'>]"
    assert fetch["Decode"] == str(str)
    assert "Before" in fetch["Middlewares Before"]
    assert "Middlewares After" not in fetch
    assert inspection.task("fetch").endswith("Extra                     : \n * owner: ops\n" + RULE)
    assert steps["Generating"] == "sync" and steps["Task Self"] == "True"
    assert steps["Description"] == "—" and steps["Tags"] == "—"
    assert steps["Args"] == "self" and steps["Kwargs"] == "count=3"
    for optional in ("Retry Count", "Retry on Exception", "Decode", "Generator", "Executor", "Extra"):
        assert optional not in steps


def test_tasks_gives_all_or_the_named_ones_skipping_unknown_names():
    app = make_app()
    inspection = SyncStats(app).inspect()

    every = [labels(block)["Task nane"] for block in blocks(inspection.tasks())]
    named = [labels(block)["Task nane"] for block in blocks(inspection.tasks("steps", "nope", "total"))]

    assert every[:3] == ["total", "fetch", "steps"]
    assert named == ["steps", "total"]
    assert inspection.tasks("nope") == "No registered tasks."
    assert inspection.task("total") == inspection.tasks("total")


def test_an_app_without_tasks_says_so(monkeypatch):
    monkeypatch.setattr(TaskRegistry, "_tasks", {})
    app = QueueTasks(name="empty")

    assert SyncStats(app).inspect().tasks() == "No registered tasks."
    assert json.loads(SyncStats(app).inspect().tasks(json=True)) == []


def test_shared_tasks_the_app_would_serve_are_included(monkeypatch):
    # Given a shared task, and one shadowed by the app's own task of that name
    app = make_app()
    for name in ("shared_one", "total"):
        monkeypatch.setitem(TaskRegistry._tasks, name,
                            TaskExecSchema.build(name, lambda x: x, TaskOptions(priority=0, description="shared")))

    # When the tasks are inspected
    inspection = SyncStats(app).inspect()

    # Then the shared one shows up and the app's own task wins the name
    assert labels(inspection.task("shared_one"))["Description"] == "shared"
    assert labels(inspection.task("total"))["Description"] == "sums"


def test_tasks_json_is_a_list_of_task_exec_schemas_as_dicts():
    app = make_app()

    data = json.loads(SyncStats(app).inspect().tasks("total", "fetch", json=True))

    assert [d["name"] for d in data] == ["total", "fetch"]
    assert set(data[0]) == {f for f in TaskExecSchema.__dataclass_fields__}
    assert data[0]["priority"] == 3 and data[0]["tags"] == ["math", "fast"] and data[0]["awaiting"] is False
    assert data[0]["func"].startswith("<function")  # made JSON-safe with str()
    assert data[1]["retry_on_exc"] == ["<class 'ValueError'>"] and data[1]["extra"] == {"owner": "ops"}


def test_task_json_is_one_dict():
    data = json.loads(SyncStats(make_app()).inspect().task("steps", json=True))

    assert data["name"] == "steps" and data["generating"] == "sync" and data["echo"] is True


def test_an_unknown_task_is_a_key_error_naming_it_and_the_registered_ones(monkeypatch):
    monkeypatch.setattr(TaskRegistry, "_tasks", {})  # no shared tasks other tests declared
    inspection = SyncStats(make_app()).inspect()

    with pytest.raises(KeyError) as caught:
        inspection.task("nope")

    message = caught.value.args[0]
    assert "'nope'" in message and "'stats'" in message
    assert "fetch, steps, total" in message


def test_text_blocks_use_the_label_width_of_the_class():
    class Narrow(InspectStats):
        label_width = 12

    text = Narrow(make_app()).app()

    assert text.splitlines()[0] == f"{'Name':<12}: stats"


# in this process: the stats faces and their plugin trigger -------------------------------------

def test_sync_stats_fires_stats_inspect_on_its_plugins_and_returns_inspect_stats():
    # Given plugins passed in, and one added for every trigger
    given, everywhere = Recorder("given"), Recorder("everywhere")
    stats = SyncStats(make_app(), plugins={"stats_inspect": [given]})
    stats.add_plugin(everywhere)

    # When inspecting
    inspection = stats.inspect()

    # Then both saw this stats object, and the result describes its app
    assert given.seen == [stats] and everywhere.seen == [stats]
    assert isinstance(inspection, InspectStats) and isinstance(inspection, UtilsInspectStats)
    assert labels(inspection.app())["Name"] == "stats"


def test_async_stats_awaits_its_plugins_and_describes_the_same():
    app = make_app("async")
    plugin = AsyncRecorder()
    stats = AsyncStats(app)
    stats.add_plugin(plugin, ["stats_inspect"])

    inspection = asyncio.run(stats.inspect())

    assert plugin.seen == [stats]
    assert inspection.tasks() == SyncStats(app).inspect().tasks()
    assert inspection.app(json=True) == SyncStats(app).inspect().app(json=True)


def test_stats_faces_share_one_base_and_a_plugins_dict_given_to_them():
    plugins: dict[str, list[BasePlugin]] = {}
    stats = SyncStats(make_app(), plugins=plugins)
    stats.add_plugin(Recorder(), ["stats_inspect"])

    assert isinstance(stats, BaseStats) and isinstance(AsyncStats(make_app()), BaseStats)
    assert stats.plugins is plugins and list(plugins) == ["stats_inspect"]
    assert AsyncStats(make_app()).plugins == {}


def test_a_plugin_that_raises_is_logged_and_inspect_still_answers(caplog):
    stats = SyncStats(make_app())
    stats.add_plugin(Broken("broken"))

    with caplog.at_level(logging.ERROR, logger="qtasks.plugins"):
        inspection = stats.inspect()

    assert isinstance(inspection, InspectStats)
    assert "plugin broken failed on trigger stats_inspect" in caplog.text


# the command line (real processes) -------------------------------------------------------------

def qtasks_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = popen([sys.executable, "-m", "qtasks", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def cli_stats() -> AsyncStats:
    """For ``--stats-app tests.test_stats:cli_stats``: async stats whose plugin announces itself."""

    class Announce(BasePlugin):
        async def trigger(self, name: str, *args: Any, **kwargs: Any) -> None:
            print(f"{name} fired for {kwargs['stats'].app.name}", file=sys.stderr)

    stats = AsyncStats(basic.app)
    stats.add_plugin(Announce(), ["stats_inspect"])
    return stats


def test_cli_inspect_tasks_json_prints_every_task_as_json():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "tasks", "json=true")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {task["name"] for task in data} == BASIC_TASKS
    assert next(t for t in data if t["name"] == "add")["description"] == "adds"


def test_cli_inspect_task_prints_its_block():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "task", "add")

    assert result.returncode == 0, result.stderr
    info = labels(result.stdout.rstrip("\n"))
    assert info["Task nane"] == "add" and info["Priority"] == "2" and info["Tags"] == "math"
    assert info["Args"] == "a" and info["Kwargs"] == "b=0"


def test_cli_inspect_tasks_takes_names_and_json_false():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "tasks", "echo", "nope", "add",
                        "json=false")

    assert result.returncode == 0, result.stderr
    assert [labels(b)["Task nane"] for b in blocks(result.stdout.rstrip("\n"))] == ["echo", "add"]


def test_cli_inspect_app_prints_the_app_block():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "app")

    assert result.returncode == 0, result.stderr
    info = labels(result.stdout.rstrip("\n"))
    assert list(info) == APP_LABELS
    assert info["Name"] == "tests" and info["Method"] == "sync" and info["Tasks Count"] == str(len(BASIC_TASKS))


def test_cli_an_unknown_target_exits_2_listing_the_targets():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "workers")

    assert result.returncode == 2
    assert "invalid choice: 'workers'" in result.stderr
    assert "'app', 'tasks', 'task'" in result.stderr


def test_cli_an_unknown_task_or_a_missing_name_exits_2_saying_so():
    unknown = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "task", "nope")
    missing = qtasks_cli("-A", "tests.apps.basic:app", "stats", "inspect", "task")

    assert unknown.returncode == 2 and "has no task 'nope'; registered: add, " in unknown.stderr
    assert missing.returncode == 2 and "stats inspect task: missing a required argument: 'task_name'" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr


def test_cli_stats_app_loads_a_stats_object_and_awaits_an_async_one():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "--stats-app", "tests.test_stats:cli_stats",
                        "inspect", "task", "add", "json=true")

    assert result.returncode == 0, result.stderr
    assert "stats_inspect fired for tests" in result.stderr
    assert json.loads(result.stdout)["name"] == "add"


def test_cli_stats_app_must_be_a_stats_object():
    result = qtasks_cli("-A", "tests.apps.basic:app", "stats", "--stats-app", "tests.apps.basic:app",
                        "inspect", "app")
    bad_spec = qtasks_cli("-A", "tests.apps.basic:app", "stats", "--stats-app", "tests.apps.basic",
                          "inspect", "app")

    assert result.returncode == 2 and "not a stats object" in result.stderr
    assert bad_spec.returncode == 2 and "--stats-app expects module:attribute" in bad_spec.stderr
