"""The command lines' rough edges, run as a person runs them: ``--version``, every sub-command on one
help line, options after the sub-command, an app module that fails to import, and ``--processes``
defaulting to the CPUs this process may use."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from broker_daemon.cli import build_parser as build_broker_parser
from qtasks import QueueTasks
from qtasks.cli import build_parser, usable_cpus
from qtasks.version import __version__
from tests.support import (
    ROOT,
    broker_process,
    free_port,
    popen,
    read_line_matching,
    stop_process,
    wait_for_workers,
)

QTASKS = [sys.executable, "-m", "qtasks"]
BROKER = [sys.executable, "-m", "broker_daemon"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = popen(list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action


# --version, --help ----------------------------------------------------------------------------------


def test_both_commands_print_the_package_version():
    assert run(*QTASKS, "--version").stdout == f"qtasks {__version__}\n"
    assert run(*BROKER, "--version").stdout == f"qtasks-broker {__version__}\n"


def test_qtasks_help_lists_every_sub_command_on_one_line():
    # Given the sub-commands the parser has (whoever registered them), each with a one-line help
    commands = subcommands(build_parser())
    helps = {action.dest: action.help for action in commands._choices_actions}
    assert set(commands.choices) == set(helps), "a sub-command without help= is missing from qtasks --help"
    assert {"run", "dead", "stats", "keys", "web"} <= set(helps)

    # When a person asks for help on an 80-column terminal
    shown = run(*QTASKS, "--help", env={"COLUMNS": "80"})

    # Then each sub-command is one line: its name and its whole help
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    for name, text in helps.items():
        assert text and "\n" not in text, name
        assert any(re.fullmatch(rf"\s+{re.escape(name)}\s+{re.escape(text)}", line) for line in lines), (
            f"{name}: {text!r} is not on one line of qtasks --help (keep it under 55 characters)")


def test_no_option_says_it_is_unused():
    parsers = [("qtasks", build_parser()), ("qtasks-broker", build_broker_parser())]
    for _, parser in parsers:
        for action in parser._actions:
            assert "unused" not in (action.help or ""), action.option_strings
    for command in subcommands(build_parser()).choices:
        assert "unused" not in run(*QTASKS, command, "--help").stdout, command
    assert "unused" not in run(*QTASKS, "--help").stdout and "unused" not in run(*BROKER, "--help").stdout


def test_web_port_is_taken_where_upstream_takes_it():
    dead_broker = f"tcp://127.0.0.1:{free_port()}"
    for where in ("after", "before"):
        port = free_port()
        args = (["web", "--port", str(port)] if where == "after" else ["--port", str(port), "web"])
        proc = popen([*QTASKS, "--broker", dead_broker, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            served = read_line_matching(proc, r"serving (http://\S+)", 30).group(1)
            assert served == f"http://127.0.0.1:{port}/", where
        finally:
            stop_process(proc)
    assert run(*QTASKS, "web", "--port", "70000").returncode == 2


# options after the sub-command -----------------------------------------------------------------------


def test_options_before_and_after_the_sub_command_mean_the_same():
    parser = build_parser()
    before = parser.parse_args(["-A", "m:app", "--broker", "tcp://127.0.0.1:1", "--timeout", "2", "dead", "list"])
    after = parser.parse_args(["dead", "list", "-A", "m:app", "--broker", "tcp://127.0.0.1:1", "--timeout", "2"])
    assert vars(before) == vars(after)
    assert parser.parse_args(["-A", "a:b", "stats", "-A", "c:d", "inspect", "app"]).app == "c:d"  # nearest wins
    assert parser.parse_args(["run", "-app", "m:app"]).app == "m:app"


def test_run_with_the_app_after_the_sub_command_serves_it():
    with broker_process() as (url, _):
        proc = popen([*QTASKS, "run", "-A", "tests.apps.basic:app", "--broker", url, "--processes", "1"],
                     stderr=subprocess.PIPE)
        try:
            read_line_matching(proc, r"connecting 1 worker process\(es\) to the broker at", 30, stream="stderr")
            app = QueueTasks(name="tests", broker_url=url)
            assert app.add_task("echo", "after", timeout=30).returning == "after"
            app.close()
        finally:
            assert stop_process(proc) == 0


def test_dead_list_with_the_broker_after_the_sub_commands(tmp_path):
    with broker_process() as (url, _):
        result = run(*QTASKS, "dead", "list", "--broker", url, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"count": 0, "dead_letters": []}


def test_an_app_is_asked_for_with_an_example():
    result = run(*QTASKS, "stats", "inspect", "app")
    assert result.returncode == 2 and "stats needs the app: give it with -A module:app" in result.stderr


# an app module that fails to import ------------------------------------------------------------------


def write_module(directory: Path, name: str, text: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(text))


def with_path(directory: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), str(directory)])}


@pytest.mark.parametrize("command", [[*QTASKS, "-A", "{module}:app", "run"], [*BROKER, "--storage", "{module}:make"]])
def test_an_import_error_in_the_app_module_shows_where_with_its_traceback(tmp_path, command):
    # Given an app module whose line 4 imports something that is not installed
    write_module(tmp_path, "brokenapp", """\
        from qtasks import QueueTasks

        app = QueueTasks(name="broken")
        import not_installed_anywhere
        """)

    # When the command loads it
    result = run(*[part.format(module="brokenapp") for part in command], env=with_path(tmp_path))

    # Then the first line says what failed and where; the traceback follows, with the user's frame only
    assert result.returncode == 2
    first, *rest = result.stderr.splitlines()
    assert re.fullmatch(rf"qtasks(-broker)?: importing module 'brokenapp' for (-A|--storage) brokenapp:\w+ failed "
                        rf"at {re.escape(str(tmp_path / 'brokenapp.py'))}, line 4: ModuleNotFoundError: "
                        r"No module named 'not_installed_anywhere' \(traceback below\)", first), first
    assert rest[0] == "Traceback (most recent call last):"
    assert f'  File "{tmp_path / "brokenapp.py"}", line 4, in <module>' in rest
    assert "    import not_installed_anywhere" in rest
    assert rest[-1] == "ModuleNotFoundError: No module named 'not_installed_anywhere'"
    assert "importlib" not in result.stderr and "loading.py" not in result.stderr


def test_an_error_deeper_down_and_a_syntax_error_are_shown_where_they_are(tmp_path):
    write_module(tmp_path, "outer", "import inner\n")
    write_module(tmp_path, "inner", """\
        def setting():
            return {}["missing"]

        VALUE = setting()
        """)
    write_module(tmp_path, "typo", "app = (\n")
    deeper = run(*QTASKS, "-A", "outer:app", "run", env=with_path(tmp_path))
    assert deeper.returncode == 2
    assert f"failed at {tmp_path / 'inner.py'}, line 2: KeyError: 'missing'" in deeper.stderr.splitlines()[0]
    frames = re.findall(r'File "([^"]+)", line (\d+)', deeper.stderr)
    assert frames == [(str(tmp_path / "outer.py"), "1"), (str(tmp_path / "inner.py"), "4"),
                      (str(tmp_path / "inner.py"), "2")]
    typo = run(*QTASKS, "-A", "typo:app", "run", env=with_path(tmp_path))
    assert typo.returncode == 2
    assert f"failed at {tmp_path / 'typo.py'}, line 1: SyntaxError: '(' was never closed" in typo.stderr
    assert f'File "{tmp_path / "typo.py"}", line 1' in typo.stderr


def test_a_setting_the_app_cannot_take_stays_one_line_that_says_what_to_fix(tmp_path):
    write_module(tmp_path, "badsetting", """\
        from qtasks import QueueTasks
        from qtasks.configs import QueueConfig

        app = QueueTasks(name="bad", config=QueueConfig(max_tasks_process=0))
        """)
    result = run(*QTASKS, "-A", "badsetting:app", "run", env=with_path(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "qtasks: QueueConfig.max_tasks_process must be a number greater than 0, got 0\n"


def test_a_module_that_is_not_there_is_still_one_line():
    result = run(*QTASKS, "-A", "tests.apps.not_there:app", "run")
    assert result.returncode == 2
    assert result.stderr == ("qtasks: cannot import module 'tests.apps.not_there' for -A tests.apps.not_there:app: "
                             "No module named 'tests.apps.not_there'\n")


# --processes -------------------------------------------------------------------------------------------


def test_processes_defaults_to_the_cpus_this_process_may_use():
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert build_parser().parse_args(["run"]).processes == usable_cpus()
    assert f"the CPUs this process may use, {usable_cpus()} here" in " ".join(
        run(*QTASKS, "run", "--help", env={"COLUMNS": "200"}).stdout.split())


@pytest.mark.parametrize("cpus", ["one", "all"])
def test_run_without_processes_starts_one_worker_per_usable_cpu(cpus):
    # Given a supervisor allowed on one CPU, or on all this test may use
    allowed = sorted(os.sched_getaffinity(0))[:1] if cpus == "one" else sorted(os.sched_getaffinity(0))
    with broker_process() as (url, _):
        proc = popen([*QTASKS, "-A", "tests.apps.basic:app", "run", "--broker", url], stderr=subprocess.PIPE,
                     preexec_fn=lambda: os.sched_setaffinity(0, allowed))
        try:
            # Then it starts as many worker processes as it has CPUs, and they serve
            read_line_matching(proc, rf"connecting {len(allowed)} worker process\(es\) to the broker", 30,
                               stream="stderr")
            app = QueueTasks(name="tests", broker_url=url)
            assert len(wait_for_workers(app, len(allowed))) == len(allowed)
            assert app.add_task("echo", cpus, timeout=30).returning == cpus
            app.close()
        finally:
            assert stop_process(proc) == 0
