"""``qtasks -A app:app map TASK INPUT.jsonl``: batch jobs from the shell, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from qtasks import QueueTasks
from qtasks.urls import probe
from tests.support import broker_process, free_port, popen, stop_process, wait_for, wait_for_workers, worker_process

APP = "tests.apps.batch_cli:app"
RUN_TIMEOUT = 120.0


def start_map(*args: str, url: str | None = None, **popen_kwargs: Any) -> subprocess.Popen[str]:
    """``python -m qtasks -A APP map ...`` with the broker URL in $QTASKS_BROKER_URL (a free port by default)."""
    env = {"QTASKS_BROKER_URL": url or f"tcp://127.0.0.1:{free_port()}"}
    return popen([sys.executable, "-m", "qtasks", "-A", APP, "map", *args], env=env, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, **popen_kwargs)


def run_map(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run it to its end; on a port of its own (no ``url``), what it hosted must be gone when it ends."""
    own = url is None
    url = url or f"tcp://127.0.0.1:{free_port()}"
    proc = start_map(*args, url=url)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        if own:
            assert probe(url)[0] == "nothing", f"a broker still listens at {url} after `qtasks map` ended"
    finally:
        stop_process(proc)  # its process group: whatever it started, if anything is left
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def by_index(text: str) -> dict[int, dict[str, Any]]:
    found = records(text)
    counts = Counter(r["index"] for r in found)
    assert all(n == 1 for n in counts.values()), f"indices written twice: {counts.most_common(3)}"
    return {r["index"]: r for r in found}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_each_line_is_one_call_and_gives_one_output_line(tmp_path):
    # Given an input of a list, an object, scalars, a blank line and a line that is not JSON
    source = write_lines(tmp_path / "in.jsonl", ['[1, "two", null]', '{"a": 1, "b": [2]}', '"text"', "42",
                                                 "", "{not json", "[[3], {}]"])
    output = tmp_path / "out.jsonl"
    # When it runs through the describe task
    result = run_map("describe", str(source), "-o", str(output), "--processes", "2")
    # Then each JSON line was one call: list -> positional, object -> keywords, other -> one argument
    results = by_index(output.read_text())
    assert results[0] == {"index": 0, "status": "success", "returning": {"args": [1, "two", None], "kwargs": {}}}
    assert results[1]["returning"] == {"args": [], "kwargs": {"a": 1, "b": [2]}}
    assert results[2]["returning"] == {"args": ["text"], "kwargs": {}}
    assert results[3]["returning"] == {"args": [42], "kwargs": {}}
    assert results[6]["returning"] == {"args": [[3], {}], "kwargs": {}}
    # and the blank line (index 4) made no call, while the numbering went on; lines in input order
    assert [r["index"] for r in records(output.read_text())] == [0, 1, 2, 3, 5, 6]
    # and the bad line was reported with its line number and written as an error, the rest done
    assert results[5] == {"index": 5, "status": "error",
                          "error": "line 6: not JSON: Expecting property name enclosed in double quotes at column 2"}
    assert "in.jsonl, line 6: not JSON" in result.stderr
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""


def test_task_errors_are_error_lines_and_the_rest_succeed(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [json.dumps([i, 7]) for i in range(20)])
    result = run_map("fail_if", str(source))
    results = by_index(result.stdout)  # no -o: stdout
    assert sorted(results) == list(range(20))
    assert results[7] == {"index": 7, "status": "error", "error": "ValueError: bad value 7"}
    assert all(results[i] == {"index": i, "status": "success", "returning": i} for i in range(20) if i != 7)
    assert [r["index"] for r in records(result.stdout)] == list(range(20))  # results in input order
    assert result.returncode == 1


def test_all_succeeded_is_exit_code_0_and_results_json_cannot_hold_are_errors(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"a": i, "b": i}) for i in range(50)])
    result = run_map("add", str(source))
    assert result.returncode == 0, result.stderr
    assert [r["returning"] for r in records(result.stdout)] == [2 * i for i in range(50)]
    # a task returning bytes: an error line naming the problem, exit code 1
    source = write_lines(tmp_path / "text.jsonl", ['"abc"'])
    result = run_map("as_bytes", str(source))
    (line,) = records(result.stdout)
    assert line["status"] == "error" and "cannot be written as JSON" in line["error"] and "bytes" in line["error"]
    assert result.returncode == 1


def test_an_unknown_task_is_a_clear_error_naming_the_apps_tasks(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", ["1"])
    result = run_map("nope", str(source))
    assert result.returncode == 2
    assert "has no task 'nope'" in result.stderr
    assert "add" in result.stderr and "slow_square" in result.stderr


def test_resume_after_sigkill_runs_every_item_exactly_once(tmp_path):
    # Given a batch of slow items, killed (SIGKILL) once part of its output is written
    count = 120
    source = write_lines(tmp_path / "in.jsonl", [json.dumps([i, 0.05]) for i in range(count)])
    output = tmp_path / "out.jsonl"
    url = f"tcp://127.0.0.1:{free_port()}"
    first = start_map("slow_square", str(source), "-o", str(output), "--processes", "2", "--concurrency", "1",
                      url=url)
    try:
        wait_for(lambda: output.exists() and output.read_text().count("\n") >= 15, 60, "15 output lines")
        os.kill(first.pid, signal.SIGKILL)  # the CLI only: what it started is orphaned, as after a real kill
        first.wait(10)
        before = output.read_text()
        written = by_index(before)
        assert 15 <= len(written) < count
        # and the kill cut a line in half (as a kill mid-write would)
        with open(output, "a") as handle:
            handle.write('{"index": 119, "status": "succ')
        # When it runs again with --resume
        result = run_map("slow_square", str(source), "-o", str(output), "--resume", "--processes", "2", url=url)
    finally:
        stop_process(first)  # its process group: the broker and workers it had started
    # Then every index is in the output exactly once, all succeeded, and the earlier lines were kept
    assert result.returncode == 0, result.stderr
    results = by_index(output.read_text())
    assert sorted(results) == list(range(count))
    assert all(r == {"index": i, "status": "success", "returning": i * i} for i, r in results.items())
    assert output.read_text().startswith(before)  # the lines of the first run kept as they were
    assert f"{len(written)} kept from the earlier run" in result.stderr


def test_ctrl_c_cancels_the_rest_and_leaves_an_output_to_resume(tmp_path):
    count = 200
    source = write_lines(tmp_path / "in.jsonl", [json.dumps([i, 0.05]) for i in range(count)])
    output = tmp_path / "out.jsonl"
    proc = start_map("slow_square", str(source), "-o", str(output), "--processes", "1", "--concurrency", "2")
    try:
        wait_for(lambda: output.exists() and output.read_text().count("\n") >= 10, 60, "10 output lines")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C: the terminal signals the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    text = output.read_text()
    assert text.endswith("\n") and len(by_index(text)) < count
    result = run_map("slow_square", str(source), "-o", str(output), "--resume", "--processes", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(by_index(output.read_text())) == list(range(count))


def test_resume_refuses_an_output_that_is_not_this_batchs(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", ["1", "2"])
    output = write_lines(tmp_path / "out.jsonl", ['{"index": 0, "status": "success", "returning": 1}',
                                                  '{"index": 5, "status": "success", "returning": 1}'])
    result = run_map("add", str(source), "-o", str(output), "--resume")
    assert result.returncode == 2
    assert "out.jsonl, line 2: index 5, but the input has 2 line(s)" in result.stderr
    assert output.read_text().count("\n") == 2  # untouched
    result = run_map("add", str(source), "--resume")
    assert result.returncode == 2 and "-o OUTPUT" in result.stderr


def test_with_a_broker_and_workers_running_it_only_submits(tmp_path):
    source = write_lines(tmp_path / "in.jsonl", [str(i) for i in range(30)])
    with broker_process() as (url, _), worker_process(APP, url, processes=2):
        client = QueueTasks(name="batch_cli", broker_url=url)
        try:
            workers = wait_for_workers(client, 2)
            result = run_map("whoami", str(source), url=url)
            assert wait_for_workers(client, 2) == workers  # it started none of its own
        finally:
            client.close()
    assert result.returncode == 0, result.stderr
    assert "submitting to the 2 worker process(es) serving app 'batch_cli'" in result.stderr
    returned = [r["returning"] for r in records(result.stdout)]
    assert [value for value, _ in returned] == list(range(30))
    assert {pid for _, pid in returned} <= workers
