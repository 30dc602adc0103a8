"""Defects found by attacking the engine as a user and an adversary would (real processes)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.configs import QueueConfig
from qtasks.exc import BrokerUnavailableError, MessageTooLargeError, NotABrokerError, TaskLostError
from qtasks.protocol import HEADER
from qtasks.urls import ZEROMQ, probe
from tests.support import (
    ROOT,
    alive,
    broker_process,
    free_port,
    kill_quietly,
    popen,
    read_line_matching,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)

ATTACK = "tests.apps.attack:app"


@pytest.fixture(scope="module")
def attack_url():
    """A broker (1 MB messages) and two worker processes of the attack app, found only by --broker."""
    with broker_process("--max-message-size", "1000000") as (url, _):
        with worker_process(ATTACK, url, processes=2, url_in_env=False):
            client = QueueTasks(name="attack", broker_url=url)
            wait_for_workers(client, 2)
            client.close()
            yield url


@pytest.fixture()
def client(attack_url):
    app = QueueTasks(name="attack", broker_url=attack_url)
    yield app
    app.close()


# 1 ------------------------------------------------------------------------------------------


def test_run_broker_url_is_the_broker_tasks_use_as_clients(client):
    # Given an app built without broker_url, served with `qtasks run --broker URL`
    first = client.add_task("echo", 1, timeout=10)
    assert first.status == "success"
    # Then State, self.add_task and ctx.get_task inside its tasks reach that same broker
    counted = client.add_task("count", timeout=10)
    assert counted.status == "success", counted.traceback
    assert client.add_task("count", timeout=10).returning == counted.returning + 1
    nested = client.add_task("parent", "child value", timeout=20)
    assert (nested.status, nested.returning) == ("success", "child value"), nested.traceback
    looked = client.add_task("look_up", str(first.uuid), timeout=10)
    assert (looked.status, looked.returning) == ("success", "success"), looked.traceback


# 2 ------------------------------------------------------------------------------------------


def test_r23_a_result_over_the_brokers_limit_fails_the_task_naming_size_and_limit(client):
    # Given a broker whose messages may carry 1,000,000 bytes
    # When a task returns 2 MB
    task = client.add_task("big_result", 2_000_000, timeout=15)
    # Then the task ends as error at once, naming the size and the limit
    assert task is not None and task.status == "error"
    assert re.search(r"takes 20\d{5} bytes, over the 1000000-byte limit", task.traceback), task.traceback
    # and the worker that ran it carries on
    assert client.add_task("echo", "after", timeout=10).returning == "after"


def test_r12_a_message_over_the_limit_is_refused_and_logged_with_its_sender(tmp_path):
    log = tmp_path / "broker.log"
    with open(log, "w") as sink, broker_process("--max-message-size", "100000", stderr=sink) as (url, proc):
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(url)
        try:
            # a message over the limit: refused with an error that names both sizes
            sock.send_multipart([HEADER, b"PING", b"\x00" * 300_000])
            header, command, body = sock.recv_multipart()
            assert command == b"ERROR" and re.search(rb"a 3000\d\d-byte message is over the broker's 100000-byte", body)
            line = wait_for(lambda: [x for x in log.read_text().splitlines() if "refused a 3000" in x],
                            10, "the broker to log the refused message")
            # a new peer whose first message is past ZeroMQ's hard cap: dropped unread, and logged too
            stranger = zmq.Context.instance().socket(zmq.DEALER)
            stranger.setsockopt(zmq.LINGER, 0)
            stranger.connect(url)
            stranger.send_multipart([HEADER, b"PING", b"\x00" * 1_200_000])
            dropped = wait_for(lambda: [x for x in log.read_text().splitlines()
                                        if "closed before a whole message" in x],
                               10, "the broker to log the dropped connection")
            stranger.close()
        finally:
            sock.close()
        assert "127.0.0.1:" in line[0] and "over the 100000-byte limit" in line[0], line
        assert "100000-byte limit" in dropped[0] and proc.poll() is None


def test_a_probe_that_closes_before_the_handshake_is_not_reported_as_a_dropped_message(tmp_path):
    # `qtasks run` probes the broker URL (connect, read the greeting, close): not worth a warning
    log = tmp_path / "broker.log"
    with open(log, "w") as sink, broker_process("--log-level", "DEBUG", stderr=sink) as (url, proc):
        assert probe(url)[0] == ZEROMQ
        wait_for(lambda: "closed before the ZeroMQ handshake" in log.read_text(), 10, "the broker to see the probe")
        assert "closed before a whole message" not in log.read_text()


# 3 ------------------------------------------------------------------------------------------


def test_a_submit_over_the_brokers_limit_fails_at_once_naming_both_sizes(attack_url):
    # Given a broker limited to 1,000,000-byte messages, and a patient client
    app = QueueTasks(name="attack", broker_url=attack_url, config=QueueConfig(broker_connect_timeout=30))
    started = time.monotonic()
    # When it submits 2 MB of arguments
    with pytest.raises(MessageTooLargeError) as caught:
        app.add_task("echo", "z" * 2_000_000)
    # Then it is told at once, with both sizes, and not that the broker is missing
    assert time.monotonic() - started < 10
    assert not isinstance(caught.value, BrokerUnavailableError)
    assert re.search(r"takes 20\d{5} bytes, over the 1000000-byte limit", str(caught.value))
    # and small submits still work
    assert app.add_task("echo", "small", timeout=10).returning == "small"
    app.close()


def test_the_async_face_checks_the_brokers_limit_too(attack_url):
    async def main() -> None:
        app = qtasks.asyncio.QueueTasks(name="attack", broker_url=attack_url)
        with pytest.raises(MessageTooLargeError, match="1000000"):
            await app.add_task("echo", "z" * 2_000_000)
        assert (await app.add_task("echo", 5, timeout=10)).returning == 5
        app.close()

    asyncio.run(main())


# 4 ------------------------------------------------------------------------------------------


def test_r27_orphaned_workers_begin_their_graceful_stop_together(tmp_path):
    with broker_process() as (url, _):
        supervisor = popen([sys.executable, "-m", "qtasks", "-A", ATTACK, "run", "--processes", "3",
                            "--concurrency", "2", "--grace", "3", "--broker", url])
        pids: set[int] = set()
        try:
            client = QueueTasks(name="attack", broker_url=url)
            pids = wait_for_workers(client, 3)
            # Given every slot of 3 worker processes running a long task
            for _ in range(6):
                client.add_task("hold", str(tmp_path), 60)
            running = wait_for(lambda: (files := list(tmp_path.iterdir())) and len(files) == 6 and files, 10,
                               "six tasks to run")
            assert {int(f.name.split("-")[0]) for f in running} == pids
            # When the supervisor is killed outright
            os.kill(supervisor.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            # Then every orphan notices at once and stops after the same grace period
            exits: dict[int, float] = {}

            def all_exited() -> bool:
                for pid in pids - set(exits):
                    if not alive(pid):
                        exits[pid] = time.monotonic() - killed_at
                return len(exits) == len(pids)

            wait_for(all_exited, 30, "the orphaned workers to exit", interval=0.02)
            # (one after another, as before the fix, they would end 3, 6 and 9 s after the kill)
            assert max(exits.values()) - min(exits.values()) < 3.0, exits
            # and the tasks they held are handed back to the queue
            assert client.broker_stats()["in_flight"] == 0
            client.close()
        finally:
            kill_quietly(*pids)
            stop_process(supervisor)


# 5 ------------------------------------------------------------------------------------------


def test_r24_a_task_that_forks_leaves_no_process_behind():
    with broker_process() as (url, _), worker_process(ATTACK, url) as supervisor:
        client = QueueTasks(name="attack", broker_url=url)
        workers = wait_for_workers(client, 1)
        # When a task forks, and both copies return from it
        task = client.add_task("fork_and_return", timeout=10)
        assert task.status == "success"
        child = task.returning
        # Then only the worker's own return counts, and the child never acts as a worker
        assert isinstance(child, int) and child not in workers
        try:
            wait_for(lambda: not alive(child), 10, "the forked child to end")
            assert wait_for_workers(client, 1) == workers
            assert client.add_task("echo", "still serving", timeout=10).returning == "still serving"
            # and a clean stop leaves nothing running
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(30) == 0
            assert not any(alive(pid) for pid in workers | {child})
        finally:
            kill_quietly(child)
        client.close()


# 6 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_name, args, raised", [
    ("exit_plain", [0], "SystemExit"),
    ("exit_plain", [3], "SystemExit"),
    ("exit_async", [0], "SystemExit"),
    ("interrupt_plain", [], "KeyboardInterrupt"),
])
def test_r24_a_task_that_exits_fails_alone_and_its_process_carries_on(client, task_name, args, raised):
    before = wait_for_workers(client, 2)
    # Given a task running beside the one that exits
    neighbour = client.add_task("nap", 0.5, "neighbour")
    # When a task calls sys.exit() (or raises KeyboardInterrupt)
    task = client.add_task(task_name, *args, timeout=10)
    # Then that task fails, once, saying why
    assert task.status == "error" and task.attempts == 1
    assert raised in task.traceback and "worker process" in task.traceback
    # while its process and the task beside it carry on
    assert neighbour.wait_result(timeout=10).returning == "neighbour"
    assert wait_for_workers(client, 2) == before


# 7 ------------------------------------------------------------------------------------------


def test_r3_a_blocked_event_loop_gets_its_process_replaced_and_the_task_never_runs_twice_at_once(tmp_path):
    marker = tmp_path / "runs"
    with broker_process(heartbeat=0.1, liveness=3) as (url, _), worker_process(ATTACK, url, processes=2):
        client = QueueTasks(name="attack", broker_url=url)
        before = wait_for_workers(client, 2)
        # When an async task blocks its process's event loop for far longer than the liveness bound
        task = client.add_task("block_loop", 20, str(marker), timeout=30)
        # Then the blocked process is killed and replaced, and the task runs again elsewhere
        assert task.status == "success", task.traceback
        runs = [int(line) for line in marker.read_text().split()]
        assert len(runs) == 2 and task.attempts == 2
        assert not alive(runs[0])
        after = wait_for(lambda: (p := wait_for_workers(client, 2)) != before and p, 20, "a replacement")
        assert runs[0] not in after and len(after - before) == 1
        # and no second result was ever reported for it
        assert client.broker_stats()["totals"].get("duplicate_results", 0) == 0
        assert client.add_task("echo", "fresh", timeout=10).returning == "fresh"
        client.close()


# 8 ------------------------------------------------------------------------------------------


def test_add_tasks_that_lose_some_tasks_keep_the_results_that_arrived():
    url = f"tcp://127.0.0.1:{free_port()}"
    with worker_process(ATTACK, url, "--grace", "0.5", processes=2):
        client = QueueTasks(name="attack", broker_url=url)
        wait_for_workers(client, 2)
        # Given a hosted (memory) broker ... which is replaced while a batch is awaited
        calls = [("echo", [i], {}) for i in range(20)] + [("nap", [60, i], {}) for i in range(3)]
        raised: list[BaseException] = []

        def restart_when_fast_ones_are_done() -> None:
            wait_for(lambda: client.broker_stats()["totals"].get("success", 0) >= 20, 20, "the fast tasks")
            pids = {w["pid"] for w in client.broker_stats()["workers"]}
            broker_pid = _broker_pid(pids)
            os.kill(broker_pid, signal.SIGKILL)

        import threading

        killer = threading.Thread(target=restart_when_fast_ones_are_done)
        killer.start()
        try:
            client.add_tasks(calls, timeout=60)
        except TaskLostError as exc:
            raised.append(exc)
        killer.join(30)
        client.close()
    # Then the error names the lost tasks and still carries the 20 results that arrived
    assert raised, "expected TaskLostError"
    error = raised[0]
    assert len(error.results) == 23
    assert [t.returning for t in error.results[:20]] == list(range(20))
    assert error.results[20:] == [None, None, None]
    assert len(error.uuids) == 3
    assert all(str(u) in str(error) for u in error.uuids)


def _broker_pid(worker_pids: set[int]) -> int:
    """The embedded broker: the supervisor's child that is not one of its workers."""
    parent = int(Path(f"/proc/{next(iter(worker_pids))}/stat").read_text().rsplit(")", 1)[1].split()[1])
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return next(int(pid) for pid in children if int(pid) not in worker_pids)


# 9 ------------------------------------------------------------------------------------------


def test_a_malformed_uuid_is_named_in_the_error():
    from qtasks.exc import InvalidTaskIdError

    app = QueueTasks(name="t", broker_url="tcp://127.0.0.1:9")  # nothing is contacted
    for call in (app.get, app.cancel):
        with pytest.raises(InvalidTaskIdError) as caught:
            call("not-a-uuid")
        assert isinstance(caught.value, ValueError) and "'not-a-uuid'" in str(caught.value)

    async def main() -> None:
        aio = qtasks.asyncio.QueueTasks(name="t", broker_url="tcp://127.0.0.1:9")
        with pytest.raises(InvalidTaskIdError, match="'1234'"):
            await aio.get("1234")

    asyncio.run(main())
    assert app.broker._connection is None


# 11 -----------------------------------------------------------------------------------------


@pytest.fixture()
def http_server():
    port = free_port()
    proc = popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(listening, 10, "the HTTP server")
        yield f"tcp://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def test_a_listener_that_is_not_a_broker_is_named_at_once(http_server):
    app = QueueTasks(name="t", broker_url=http_server, config=QueueConfig(broker_connect_timeout=30))
    started = time.monotonic()
    with pytest.raises(NotABrokerError) as caught:
        app.add_task("echo", 1, timeout=5)
    assert time.monotonic() - started < 10
    assert isinstance(caught.value, BrokerUnavailableError)
    assert http_server in str(caught.value) and "not a QTasks broker" in str(caught.value)
    assert "Start one with" not in str(caught.value)
    app.close()


def test_serving_against_a_listener_that_is_not_a_broker_says_so(http_server):
    proc = popen([sys.executable, "-m", "qtasks", "-A", ATTACK, "run", "--broker", http_server],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        stop_process(proc)
    assert proc.returncode == 2
    assert "not a QTasks broker" in err and http_server in err
    quick = popen([sys.executable, str(ROOT / "examples" / "quickstart.py")], env={"QTASKS_BROKER_URL": http_server},
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = quick.communicate(timeout=30)
    finally:
        stop_process(quick)
    assert quick.returncode != 0 and "not a QTasks broker" in err
    assert f"qtasks-broker --bind {http_server}" not in err


# 12 -----------------------------------------------------------------------------------------

_WAITER = """
import asyncio, sys
import qtasks.asyncio
from qtasks import QueueTasks
url, face, call = sys.argv[1:]
if face == "sync":
    app = QueueTasks(name="nobody", broker_url=url)
    task = app.add_task("x", 1)
    print("waiting", flush=True)
    if call == "add_tasks":
        app.add_tasks([("x", [1], {})], timeout=30)
    elif call == "wait_result":
        task.wait_result(timeout=30)
    else:
        list(app.stream(task.uuid, timeout=30))
else:
    async def main():
        app = qtasks.asyncio.QueueTasks(name="nobody", broker_url=url)
        await app.add_task("x", 1)
        print("waiting", flush=True)
        await app.add_tasks([("x", [1], {})], timeout=30)
    asyncio.run(main())
"""


@pytest.mark.parametrize("face, call", [("sync", "add_tasks"), ("sync", "wait_result"), ("sync", "stream"),
                                        ("async", "add_tasks")])
def test_ctrl_c_interrupts_a_blocking_wait_promptly(face, call):
    with broker_process() as (url, _):
        proc = popen([sys.executable, "-c", _WAITER, url, face, call], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
        try:
            read_line_matching(proc, "waiting", 20)
            proc.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            _, err = proc.communicate(timeout=20)
            took = time.monotonic() - interrupted
        finally:
            stop_process(proc)
    assert "KeyboardInterrupt" in err and "BrokerUnavailableError" not in err, err
    assert took < 5, took


# 13 -----------------------------------------------------------------------------------------


def test_two_apps_of_one_name_on_one_broker_run_only_their_own_tasks():
    with broker_process() as (url, _):
        client = QueueTasks(broker_url=url)  # the default name, as both projects use
        # Given no worker yet: a task waits, and the broker shows it waits for one
        waiting_alpha = client.add_task("alpha", 0)
        assert client.broker_stats()["unserved"] == {"QueueTasks": 1}
        with worker_process("tests.apps.twin_a:app", url), worker_process("tests.apps.twin_b:app", url):
            wait_for_workers(client, 2)
            assert waiting_alpha.wait_result(timeout=10).returning == "alpha 0"
            # When tasks of both projects are submitted to the shared queue
            tasks = client.add_tasks([("alpha" if i % 2 else "beta", [i], {}) for i in range(10)], timeout=20)
            # Then each runs on a worker of its own project
            assert [t.status for t in tasks] == ["success"] * 10
            assert [t.returning for t in tasks] == [f"{'alpha' if i % 2 else 'beta'} {i}" for i in range(10)]
        # And a name no worker of the queue serves ends as error, naming it
        with worker_process("tests.apps.twin_a:app", url):
            wait_for_workers(client, 1)
            unknown = client.add_task("gamma", 1, timeout=10)
            assert unknown.status == "error" and "'gamma'" in unknown.traceback
        client.close()


# 14 -----------------------------------------------------------------------------------------

_QUIET_APP = """
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
from qtasks import QueueTasks
import qtasks.asyncio
app = QueueTasks(name="quiet")
aio = qtasks.asyncio.QueueTasks(name="quiet-async")
app.log.info("an info line the user did not ask for")
app.log.warning("a warning the user wants")
print("levels", logging.getLogger("qtasks").level, logging.getLogger("quiet").level, flush=True)
print("handlers", len(logging.getLogger("quiet").handlers), len(logging.getLogger("qtasks").handlers), flush=True)
"""


def test_the_library_configures_no_logging_on_import():
    result = subprocess.run([sys.executable, "-c", _QUIET_APP], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "an info line" not in result.stderr
    assert result.stderr.count("a warning the user wants") == 1
    assert "levels 0 0" in result.stdout and "handlers 0 0" in result.stdout


def test_the_cli_configures_logging_once_with_one_format_and_whole_printed_lines(tmp_path):
    err, out = tmp_path / "err", tmp_path / "out"
    with broker_process() as (url, _):
        with open(err, "w") as sink, open(out, "w") as printed, worker_process(
                "tests.apps.noisy:app", url, "--concurrency", "16", processes=2, stdout=printed,
                stderr=sink, env={"QTASKS_LOG_LEVEL": "warning"}) as proc:
            client = QueueTasks(name="noisy", broker_url=url)
            wait_for_workers(client, 2)
            results = client.add_tasks([("shout", [i], {}) for i in range(300)], timeout=60)
            assert all(r.status == "success" for r in results)
            assert client.add_task("chatty", "hello", timeout=10).returning == "hello"
            client.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        lines = [line for line in out.read_text().splitlines() if line]
        # every print() from a task reached stdout as one whole line
        assert len(lines) == 300 and all(line.startswith("line-") and line.endswith("-end") for line in lines)
        assert sorted(int(line.split("-")[1]) for line in lines) == list(range(300))
        logged = err.read_text().splitlines()
        # QTASKS_LOG_LEVEL=warning: no INFO lines; the task's own line carries its name and uuid
        assert not [line for line in logged if " INFO " in line], logged
        chatty = [line for line in logged if "chatty says hello" in line]
        assert len(chatty) == 1 and "chatty" in chatty[0].split("chatty says")[0]
        # one format for every line
        pattern = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
                             r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[pid \d+\]: ")
        assert all(pattern.match(line) for line in logged if line and not line.startswith((" ", "Traceback"))), logged


def test_the_embedded_broker_is_announced_by_a_log_line_not_a_print():
    url = f"tcp://127.0.0.1:{free_port()}"
    with worker_process(ATTACK, url, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        client = QueueTasks(name="attack", broker_url=url)
        wait_for_workers(client, 1)
        client.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert out == ""
    assert "hosts one" in err and url in err


# 15 -----------------------------------------------------------------------------------------


def test_a_worker_whose_broker_went_away_says_so_and_rejoins_the_next_one(tmp_path):
    url = f"tcp://127.0.0.1:{free_port()}"
    log = tmp_path / "second.log"
    client = QueueTasks(name="attack", broker_url=url)
    with worker_process(ATTACK, url) as first:
        wait_for_workers(client, 1)
        # Given a second `qtasks run` joined to the broker the first one hosts
        with open(log, "w") as sink, worker_process(ATTACK, url, stderr=sink):
            wait_for_workers(client, 2)
            # When the first one stops, taking its broker with it
            first.send_signal(signal.SIGTERM)
            assert first.wait(30) == 0
            # Then the second says the broker is gone
            wait_for(lambda: "is gone" in log.read_text(), 15, "the worker to notice")
            # and when a broker is back there, it rejoins and says so
            with broker_process(bind=url):
                wait_for(lambda: "rejoined" in log.read_text(), 15, "the worker to rejoin")
                assert client.add_task("echo", "back", timeout=10).returning == "back"
    client.close()


def test_a_peer_whose_first_message_is_seen_before_its_accepted_event_keeps_its_name(caplog):
    # the monitor socket is read apart from the main one: ACCEPTED may come after the first message
    import struct

    from broker_daemon.connections import ConnectionLog

    class Frame:
        def get(self, option: int) -> int:
            return 7

    def event(kind: int, fd: int) -> list[bytes]:
        return [struct.pack("=hi", kind, fd), b"tcp://127.0.0.1:1"]

    connections = ConnectionLog(1000, lambda identity: "worker w1 (pid 12)")
    connections.note(b"w1", Frame())
    connections.on_event(event(zmq.EVENT_ACCEPTED, 7))
    with caplog.at_level("INFO", logger="qtasks.broker"):
        connections.on_event(event(zmq.EVENT_DISCONNECTED, 7))
    assert "closed before a whole message" not in caplog.text
    assert "worker w1 (pid 12)" in caplog.text and "without a goodbye" in caplog.text
