"""The durable daemon with real processes: restarts on a data directory (R5, R6, R8, R18, R19), the
directory lock, dead letters from the command line, limits (R26), result expiry and forgotten
clients (R20), and the memory a queued task costs (R13).

A "restart" is a SIGKILL of ``qtasks-broker`` and a new one on the same port and directory; the
worker processes are never restarted: they find the new broker themselves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from qtasks import QueueTasks
from qtasks.configs import QueueConfig
from qtasks.exc import QueueFullError, TaskLostError
from tests.support import (
    broker_process,
    free_port,
    popen,
    read_line_matching,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)

APP = "tests"  # tests.apps.basic


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class Daemon:
    """A ``qtasks-broker`` on a fixed free port that can be killed and started again."""

    def __init__(self, data_dir: Path | None, *extra: str) -> None:
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.args = [*(["--data-dir", str(data_dir)] if data_dir else []), *extra]
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @contextmanager
    def running(self) -> Iterator[Daemon]:
        self.start()
        try:
            yield self
        finally:
            if self.proc is not None:
                stop_process(self.proc)

    def start(self) -> None:
        context = broker_process(*self.args, bind=self.url, stderr=subprocess.PIPE)
        self._context = context
        _, self.proc = context.__enter__()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


def client(url: str, **config: Any) -> QueueTasks:
    return QueueTasks(name=APP, broker_url=url, config=QueueConfig(**config) if config else None)


# R5 ------------------------------------------------------------------------------------------------


def test_r5_a_killed_daemon_restarted_on_its_directory_finishes_every_task_once(tmp_path):
    daemon = Daemon(tmp_path / "data")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, processes=2,
                                          stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        pids = wait_for_workers(app, 2)
        tasks = app.add_tasks([("nap", [0.02, i], {}) for i in range(200)])
        wait_for(lambda: app.broker_stats()["totals"].get("success", 0) >= 50, 30, "50 tasks to finish")
        daemon.restart()  # tasks queued and in flight
        finished = [t.wait_result(timeout=60) for t in tasks]
        assert [t.status for t in finished] == ["success"] * 200
        assert [t.returning for t in finished] == list(range(200))
        assert {t.uuid for t in finished} == {t.uuid for t in tasks}  # one final record per uuid
        assert wait_for_workers(app, 2) == pids  # the same processes, reconnected
        assert app.add_task("echo", "fresh", timeout=20).returning == "fresh"
        app.close()


# R6 ------------------------------------------------------------------------------------------------


def test_r6_a_result_that_finished_while_the_daemon_was_down_is_taken_once(tmp_path):
    marker = tmp_path / "ran"
    daemon = Daemon(tmp_path / "data")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        wait_for_workers(app, 1)
        task = app.add_task("nap_then_mark", 1.0, str(marker))
        wait_for(lambda: app.get(task.uuid).status == "process", 20, "the task to start")
        daemon.kill()
        wait_for(marker.exists, 20, "the task to finish while the daemon is down")
        daemon.start()
        done = task.wait_result(timeout=30)
        assert (done.status, done.returning, done.attempts) == ("success", "done", 1)
        assert marker.read_text() == "ran\n"  # it ran once
        assert app.add_task("echo", "fresh", timeout=20).returning == "fresh"
        app.close()


# R8 ------------------------------------------------------------------------------------------------


def wait_in_thread(app: QueueTasks, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["task"] = app.add_task(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (the test looks at it)
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_r8_a_client_waiting_across_a_restart_gets_its_result_with_a_data_directory(tmp_path):
    marker = tmp_path / "started"
    daemon = Daemon(tmp_path / "data")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        wait_for_workers(app, 1)
        thread, outcome = wait_in_thread(app, "mark_then_nap", str(marker), 1.5, "kept", timeout=30)
        wait_for(marker.exists, 20, "the task to start")
        daemon.restart()
        thread.join(40)
        assert not thread.is_alive() and "error" not in outcome, outcome
        assert (outcome["task"].status, outcome["task"].returning) == ("success", "kept")
        app.close()


def test_r8_in_memory_a_restart_fails_the_wait_naming_the_task(tmp_path):
    marker = tmp_path / "started"
    daemon = Daemon(None)
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        wait_for_workers(app, 1)
        thread, outcome = wait_in_thread(app, "mark_then_nap", str(marker), 3.0, timeout=60)
        wait_for(marker.exists, 20, "the task to start")
        daemon.restart()
        thread.join(30)  # well within the task's 60 s: the loss is noticed, not waited out
        assert not thread.is_alive()
        error = outcome.get("error")
        assert isinstance(error, TaskLostError), outcome
        assert "restarted" in str(error) and "data directory" in str(error) and len(error.uuids) == 1
        assert app.add_task("echo", "fresh", timeout=20).returning == "fresh"
        app.close()


# R18 -----------------------------------------------------------------------------------------------


def test_r18_a_delayed_retry_keeps_its_time_across_a_restart_and_runs_once(tmp_path):
    marker = tmp_path / "first-run"
    daemon = Daemon(tmp_path / "data")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        wait_for_workers(app, 1)
        task = app.add_task("retry_later", str(marker), 2.0)
        wait_for(lambda: app.broker_stats()["delayed"] == 1, 20, "the retry to be held")
        daemon.restart()
        done = task.wait_result(timeout=30)
        first_run = float(marker.read_text())
        assert done.status == "success" and done.returning >= first_run + 2.0  # not before its time
        assert done.retry_parent_uuid == str(task.uuid)
        assert app.broker_stats()["totals"].get("success") == 1
        assert app.add_task("echo", "fresh", timeout=20).returning == "fresh"
        app.close()


# R19 -----------------------------------------------------------------------------------------------


def test_r19_state_and_global_config_survive_a_restart_exactly(tmp_path):
    daemon = Daemon(tmp_path / "data", "--heartbeat-interval", "0.5", "--heartbeat-liveness", "6")
    with daemon.running(), worker_process("tests.apps.deps:app", daemon.url, processes=8,
                                          stderr=subprocess.DEVNULL):
        app = QueueTasks(name="deps", broker_url=daemon.url,
                         config=QueueConfig(broker_connect_timeout=15))
        wait_for_workers(app, 8, timeout=60)
        results = app.add_tasks([("count", [i], {}) for i in range(8000)], timeout=300)
        assert all(t is not None and t.status == "success" for t in results)
        app.global_config.set("main", "mode", "durable")
        daemon.restart()
        import asyncio

        from tests.apps.deps import Counter

        async def read() -> dict:
            return await Counter(app).get_all()

        data = asyncio.run(read())
        assert data["counter"] == 8000 and len([k for k in data if k.startswith("key-")]) == 8000
        assert app.global_config.get("main", "mode") == "durable"
        assert app.add_task("count", 8000, timeout=60).status == "success"
        app.close()


# the directory ---------------------------------------------------------------------------------


def test_one_daemon_per_directory_and_memory_mode_says_so(tmp_path):
    daemon = Daemon(tmp_path / "data")
    with daemon.running():
        second = popen([sys.executable, "-m", "broker_daemon", "--bind", "tcp://127.0.0.1:0", "--data-dir",
                        str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _, err = second.communicate(timeout=30)
        finally:
            stop_process(second)
        assert second.returncode == 2
        assert f"in use by qtasks-broker pid {daemon.proc.pid}: stop that broker" in err
        assert read_line_matching(daemon.proc, r"storing tasks, results and State in", 10, stream="stderr")
    memory = Daemon(None)
    with memory.running():
        read_line_matching(memory.proc, r"keeping tasks, results and State in memory \(no --data-dir\)", 10,
                           stream="stderr")


# dead letters --------------------------------------------------------------------------------------


def qtasks_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qtasks", "--broker", url, *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(Path.cwd())})


def test_dead_letters_from_the_cli_survive_a_restart_and_can_be_retried(tmp_path):
    daemon = Daemon(tmp_path / "data")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url, broker_connect_timeout=15)
        wait_for_workers(app, 1)
        failed = [app.add_task("fail", f"boom {i}", timeout=20) for i in range(3)]
        assert {t.status for t in failed} == {"error"}
        daemon.restart()
        listed = qtasks_cli(daemon.url, "dead", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        document = json.loads(listed.stdout)
        assert document["count"] == 3
        assert {d["uuid"] for d in document["dead_letters"]} == {str(t.uuid) for t in failed}
        assert "ValueError: boom 0" in document["dead_letters"][0]["traceback"]
        table = qtasks_cli(daemon.url, "dead", "list")
        assert str(failed[0].uuid) in table.stdout and "ValueError: boom" in table.stdout
        again = qtasks_cli(daemon.url, "dead", "retry", str(failed[0].uuid))
        assert again.returncode == 0 and f"{failed[0].uuid} -> " in again.stdout
        followed = failed[0].wait_result(timeout=20)  # a wait on the dead uuid follows the new attempt
        assert followed.status == "error" and followed.retry_parent_uuid == str(failed[0].uuid)
        assert len(app.dead_letters()) == 3  # two old, and the retry that failed again
        retried = app.retry_dead(str(failed[1].uuid))
        assert retried is not None and app.retry_dead(str(failed[1].uuid)) is None
        retried.wait_result(timeout=20)
        purged = qtasks_cli(daemon.url, "dead", "purge")
        assert purged.returncode == 0 and "purged 3 dead letter(s)" in purged.stdout
        assert app.dead_letters() == []
        assert app.add_task("echo", "fresh", timeout=20).returning == "fresh"
        app.close()


def test_the_dead_command_says_when_no_broker_answers():
    url = f"tcp://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-m", "qtasks", "--broker", url, "--timeout", "1", "dead", "list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no QTasks broker answered" in result.stderr


# limits (R26), expiry and forgotten clients (R20), memory (R13) --------------------------------------


def test_r26_submits_past_the_byte_limit_are_refused_and_memory_returns(tmp_path):
    daemon = Daemon(None, "--max-queued-bytes", str(150 * 1024 * 1024))
    with daemon.running():
        app = client(daemon.url, broker_connect_timeout=30)
        before = rss_kb(daemon.proc.pid)
        accepted, refused = [], 0
        for _ in range(6):  # 60 MB each, to a queue no worker serves
            try:
                accepted.append(app.add_task("echo", "x" * (60 * 1024 * 1024)))
            except QueueFullError as exc:
                refused += 1
                assert "--max-queued-bytes" in str(exc) and "nothing of it stored" in str(exc)
        assert (len(accepted), refused) == (2, 4)
        peak = rss_kb(daemon.proc.pid)
        assert peak - before < 400 * 1024, (before, peak)  # two stored, none of the refused kept
        for task in accepted:
            app.cancel(task.uuid)
        app.flush_all()
        again = app.add_task("echo", "y" * (60 * 1024 * 1024))  # room again
        app.cancel(again.uuid)
        app.flush_all()
        wait_for(lambda: rss_kb(daemon.proc.pid) - before < 120 * 1024, 20, "the memory to be returned")
        app.close()


def test_r20_ended_records_expire_and_waits_of_clients_that_went_away_are_dropped(tmp_path):
    daemon = Daemon(None, "--result-ttl", "1")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url)
        wait_for_workers(app, 1)
        done = app.add_task("echo", "short-lived", timeout=20)
        wait_for(lambda: app.get(done.uuid) is None, 20, "the record to expire")
        assert app.broker_stats()["totals"]["expired"] >= 1
        gate = tmp_path / "never"
        held = app.add_task("wait_for_file", str(gate), 60.0)
        waiter = popen([sys.executable, "-c", (
            "import sys; from qtasks import QueueTasks\n"
            f"app = QueueTasks(name={APP!r}, broker_url={daemon.url!r})\n"
            f"print('waiting', flush=True); app.get({str(held.uuid)!r}).wait_result(timeout=120)")],
            stdout=subprocess.PIPE)
        read_line_matching(waiter, "waiting", 30)
        own = 1  # `held` was submitted without waiting: its result is pushed to this client
        wait_for(lambda: app.broker_stats()["waiters"] == own + 1, 20, "the other client to wait")
        stop_process(waiter, signal.SIGKILL)
        wait_for(lambda: app.broker_stats()["waiters"] == own, 20, "the broker to forget the client's wait")
        gate.touch()
        assert held.wait_result(timeout=20).returning == "released"
        app.close()


def test_r13_a_queued_task_costs_the_daemon_little_memory(tmp_path):
    daemon = Daemon(None)
    with daemon.running():
        app = client(daemon.url)
        app.add_task("echo", "warm-up")
        before = rss_kb(daemon.proc.pid)
        for _ in range(20):
            app.add_tasks([("echo", [i], {}) for i in range(5000)])
        assert app.broker_stats()["queues"] == {APP: 100_001}
        grown = rss_kb(daemon.proc.pid) - before
        assert grown < 100_000 * 2, f"{grown} KB for 100,000 queued tasks"  # the benchmark prints the exact cost
        app.close()


def test_a_submit_that_finds_no_room_leaves_the_client_usable(tmp_path):
    daemon = Daemon(None, "--max-queued-tasks", "2")
    with daemon.running():
        app = client(daemon.url)
        app.add_tasks([("echo", [1], {}), ("echo", [2], {})])
        refused = app.add_task("echo", 3)  # pipelined: the refusal reaches the next call, and the wait
        with pytest.raises(QueueFullError, match=r"queue 'tests' holds 2 unfinished task\(s\); 1 more would pass"):
            app.ping()
        assert app.ping() and app.broker_stats()["totals"]["refused"] == 1
        with pytest.raises(QueueFullError):
            refused.wait_result(timeout=5)
        app.close()


def test_r20_daemon_and_worker_memory_stay_flat_over_a_soak(tmp_path):
    daemon = Daemon(None, "--result-ttl", "0.5")
    with daemon.running(), worker_process("tests.apps.basic:app", daemon.url, stderr=subprocess.DEVNULL):
        app = client(daemon.url)
        (worker_pid,) = wait_for_workers(app, 1)
        samples = []
        for _ in range(5):
            results = app.add_tasks([("echo", [i], {}) for i in range(2500)], timeout=120)
            assert all(t is not None and t.status == "success" for t in results)
            wait_for(lambda: app.broker_stats()["records"] == 0, 30, "the records to expire")
            samples.append((rss_kb(daemon.proc.pid), rss_kb(worker_pid)))
        (broker_warm, worker_warm), (broker_end, worker_end) = samples[1], samples[-1]
        assert broker_end - broker_warm < 4096 and worker_end - worker_warm < 4096, samples
        app.close()
