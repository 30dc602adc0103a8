"""The command lines: ``qtasks-broker`` and ``qtasks`` (``python -m qtasks``)."""

from __future__ import annotations

import signal
import subprocess
import sys

from qtasks import QueueTasks
from tests.support import broker_process, popen, read_line_matching, stop_process


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_broker_help_lists_its_flags():
    result = run(sys.executable, "-m", "broker_daemon", "--help")
    assert result.returncode == 0
    for flag in ("--bind", "--log-level", "--heartbeat-interval", "--max-attempts", "tcp://127.0.0.1:5555"):
        assert flag in result.stdout


def test_broker_serves_with_its_flags_and_stops_cleanly_on_sigterm():
    with broker_process("--log-level", "DEBUG", heartbeat=0.25, max_attempts=5) as (url, proc):
        client = QueueTasks(name="cli", broker_url=url)
        assert client.ping() is True
        stats = client.broker_stats()
        assert stats["max_attempts"] == 5
        assert client.add_task("anything", 1).status == "new"
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_broker_sigint_also_stops_it_cleanly():
    with broker_process() as (_, proc):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_broker_refuses_a_taken_endpoint_with_a_clear_error():
    with broker_process() as (url, _):
        result = run(sys.executable, "-m", "broker_daemon", "--bind", url)
    assert result.returncode == 2
    assert f"cannot bind {url}" in result.stderr and "--bind" in result.stderr


def test_broker_rejects_bad_flags():
    assert run(sys.executable, "-m", "broker_daemon", "--max-attempts", "0").returncode == 2
    result = run(sys.executable, "-m", "broker_daemon", "--bind", "localhost:5555")
    assert result.returncode == 2 and "not a ZeroMQ endpoint" in result.stderr


def test_broker_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).parent / "qtasks-broker"  # where pip puts the console scripts
    assert script.exists(), "pip install -e . installs the qtasks-broker console script"
    assert (Path(sys.executable).parent / "qtasks").exists()
    proc = popen([str(script), "--bind", "tcp://127.0.0.1:0"], stdout=subprocess.PIPE)
    try:
        assert read_line_matching(proc, r"listening at tcp://127\.0\.0\.1:\d+", 20)
    finally:
        assert stop_process(proc) == 0


def test_qtasks_cli_without_command_prints_help():
    result = run(sys.executable, "-m", "qtasks")
    assert result.returncode == 0 and "run" in result.stdout


def test_qtasks_cli_explains_a_bad_app_spec():
    cases = {
        "tests.apps.basic": "expects module:attribute",
        "tests.apps.nothere:app": "cannot import module 'tests.apps.nothere'",
        "tests.apps.basic:nope": "has no attribute 'nope'",
        "tests.apps.basic:echo": "not a QueueTasks app",
    }
    for spec, message in cases.items():
        result = run(sys.executable, "-m", "qtasks", "-A", spec, "run")
        assert result.returncode == 2, spec
        assert message in result.stderr, (spec, result.stderr)


def test_qtasks_cli_accepts_upstream_app_spelling_and_needs_the_app():
    result = run(sys.executable, "-m", "qtasks", "run")
    assert result.returncode == 2 and "-A module:app" in result.stderr
    result = run(sys.executable, "-m", "qtasks", "-app", "tests.apps.basic:app", "run", "--processes", "0")
    assert result.returncode == 2 and "at least 1" in result.stderr
