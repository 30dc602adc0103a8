"""Rows of RELIABILITY.md made true by the engine, with faults injected into real processes."""

from __future__ import annotations

import os
import signal
import time

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qtasks import QueueTasks
from qtasks.configs import QueueConfig
from qtasks.exc import BrokerUnavailableError, MessageTooLargeError, UnserializableArgumentError
from qtasks.protocol import HEADER
from tests.support import broker_process, free_port, wait_for, wait_for_workers, worker_process


def test_r1_sigkilled_worker_task_is_redelivered_and_only_that_process_restarts(tmp_path):
    pid_file, marker = tmp_path / "pid", tmp_path / "started"
    with broker_process() as (url, _), worker_process("tests.apps.basic:app", url, processes=2):
        client = QueueTasks(name="tests", broker_url=url)
        before = wait_for_workers(client, 2)
        # Given a task running on one of two worker processes
        task = client.add_task("pid_then_hang", str(pid_file), str(marker))
        victim = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 10, "the task to start"))
        assert victim in before
        # When that process is SIGKILLed mid-task
        os.kill(victim, signal.SIGKILL)
        # Then the task is delivered again and succeeds on its second attempt
        finished = task.wait_result(timeout=20)
        assert finished.status == "success", finished.traceback
        assert finished.attempts == 2
        # and exactly one process was replaced: the killed one
        def replaced() -> set[int] | None:
            pids = wait_for_workers(client, 2)
            return pids if victim not in pids else None

        after = wait_for(replaced, 20, "the replacement to register")
        assert before - {victim} <= after and len(after - before) == 1
        assert client.add_task("echo", "fresh", timeout=5).returning == "fresh"
        client.close()



def test_r4_a_long_healthy_task_is_not_redelivered_and_runs_once(tmp_path):
    marker = tmp_path / "ran"
    # heartbeats every 0.1 s, a worker is lost after 0.3 s of silence: the task runs ten times that
    with broker_process(heartbeat=0.1, liveness=3) as (url, _), worker_process("tests.apps.basic:app", url):
        client = QueueTasks(name="tests", broker_url=url)
        wait_for_workers(client, 1)
        done = client.add_task("nap_then_mark", 3.0, str(marker), timeout=30)
        assert (done.status, done.attempts) == ("success", 1)
        assert marker.read_text() == "ran\n"  # executed exactly once
        assert client.broker_stats()["totals"].get("lost", 0) == 0
        assert client.add_task("echo", "fresh", timeout=5).returning == "fresh"
        client.close()

@pytest.mark.parametrize("how, cause", [("sigkill", "signal 9, SIGKILL"), ("exit", "exit code 1")])
def test_r2_poison_task_ends_in_error_after_the_attempt_bound(how, cause):
    with broker_process(max_attempts=3) as (url, _), worker_process("tests.apps.basic:app", url, processes=2):
        client = QueueTasks(name="tests", broker_url=url)
        wait_for_workers(client, 2)
        # Given a task that kills whichever process runs it, and ordinary tasks beside it
        poison = client.add_task("kill_self", how)
        others = client.add_tasks([("echo", [i], {}) for i in range(30)])
        # Then it is tried max-attempts times and ends as error saying why
        final = poison.wait_result(timeout=30)
        assert final.status == "error"
        assert final.attempts == 3
        assert "gave up after 3 attempts" in final.traceback and cause in final.traceback
        assert "WorkerLostError: the worker process running this task was lost" in final.traceback
        # while the other tasks — some of which shared a process with it — still complete
        for task in others:
            assert task.wait_result(timeout=20).status == "success"
        # and no further delivery happens
        assert client.get(poison.uuid).attempts == 3
        assert client.add_task("echo", "after", timeout=10).returning == "after"
        client.close()


def test_broker_unavailable_is_a_clear_error_after_a_bounded_wait_and_nothing_leaks_later():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    client = QueueTasks(name="tests", broker_url=url, config=QueueConfig(broker_connect_timeout=0.5))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as caught:
        client.add_task("echo", 1, timeout=30)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert url in message and f"qtasks-broker --bind {url}" in message
    with pytest.raises(ConnectionError):  # also a ConnectionError for generic handlers
        client.add_task("echo", 2)
    assert client.ping() is False
    # When a broker appears later at that URL, the failed submissions do not reach it
    import subprocess
    import sys

    from tests.support import popen, read_line_matching, stop_process

    proc = popen([sys.executable, "-m", "broker_daemon", "--bind", url], stdout=subprocess.PIPE)
    try:
        read_line_matching(proc, "listening at", 20)
        stats = wait_for(lambda: client.broker_stats(), 10, "the broker to answer")
        assert stats["records"] == 0 and stats["totals"].get("submitted", 0) == 0
    finally:
        stop_process(proc)
        client.close()


def test_r11_unserializable_arguments_raise_before_anything_is_sent():
    client = QueueTasks(name="tests", broker_url="tcp://127.0.0.1:9")  # nothing is contacted
    with pytest.raises(TypeError) as caught:
        client.add_task("echo", 1, object())
    assert isinstance(caught.value, UnserializableArgumentError)
    assert "argument #1 of type object" in str(caught.value)
    with pytest.raises(UnserializableArgumentError, match=r"argument 'tags' of type set"):
        client.add_task("echo", tags={1, 2})
    with pytest.raises(MessageTooLargeError, match=r"argument #0, a str\).* over the 67108864-byte limit"):
        client.add_task("echo", "x" * (65 * 1024 * 1024))
    assert client.broker._connection is None  # no socket was even opened
    assert getattr(client.broker._own, "connection", None) is None


def _raw_dealer(url: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(url)
    return sock


def _error_reply(sock: zmq.Socket) -> tuple[str, str]:
    header, command, body = sock.recv_multipart()
    assert header == HEADER and command == b"ERROR"
    _, code, message = msgpack.unpackb(body)
    return code, message


@pytest.fixture(scope="module")
def small_frames_broker():
    with broker_process("--max-message-size", "65536") as (url, proc):
        yield url, proc


def test_r9_r22_malformed_frames_get_error_replies_and_the_broker_keeps_serving(small_frames_broker):
    url, proc = small_frames_broker
    sock = _raw_dealer(url)
    cases = [
        ([b"\x00garbage"], "malformed", "expected 3 frames"),
        ([HEADER, b"PING"], "malformed", "expected 3 frames"),
        ([HEADER, b"PING", msgpack.packb([1]), b"extra"], "malformed", "expected 3 frames"),
        ([b"QTASKS/9", b"PING", msgpack.packb([1])], "version", "the peer speaks 'QTASKS/9'"),
        ([b"HTTP/1.1", b"GET", b"/"], "malformed", "not a QTasks message"),
        ([HEADER, b"LAUNCH", msgpack.packb([1])], "malformed", "unknown command"),
        ([HEADER, b"SUBMIT", msgpack.packb([1, None, [[b"x" * 16, "t"]]])[:-3]], "malformed", "not valid msgpack"),
        ([HEADER, b"SUBMIT", msgpack.packb({"a": 1})], "malformed", "wrong shape"),
        ([HEADER, b"SUBMIT", msgpack.packb([1, None, [[b"short", "t", "q", 0, 0.0, b"", {}]]])],
         "malformed", "16 raw bytes"),
        ([HEADER, b"GET", b"\xc1"], "malformed", "not valid msgpack"),
        ([HEADER, b"DISPATCH", msgpack.packb([])], "unexpected", "not a command the broker accepts"),
    ]
    for frames, code, needle in cases:
        sock.send_multipart(frames)
        got_code, message = _error_reply(sock)
        assert (got_code, needle in message) == (code, True), (frames, got_code, message)
    # the version error names both versions
    sock.send_multipart([b"QTASKS/7", b"PING", b""])
    assert "version 2" in _error_reply(sock)[1]
    # an oversized frame gets the sender disconnected, not the broker hurt
    big = _raw_dealer(url)
    big.send_multipart([HEADER, b"PING", b"\x00" * 200_000])
    # and a well-formed request on the same socket still works
    client = QueueTasks(name="tests", broker_url=url)
    stats = client.broker_stats()
    assert stats["totals"]["malformed"] >= len(cases)
    assert proc.poll() is None
    sock.close()
    big.close()
    client.close()


_SCALARS = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.binary(max_size=20) | st.text(max_size=8)
_BODIES = st.builds(msgpack.packb, _SCALARS | st.lists(_SCALARS, max_size=8)
                    | st.dictionaries(st.text(max_size=4), _SCALARS, max_size=4)
                    | st.lists(st.lists(_SCALARS, max_size=7), max_size=3))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frames=st.lists(st.one_of(st.binary(max_size=48), st.just(HEADER),
                                 st.sampled_from([b"SUBMIT", b"GET", b"WAIT", b"READY", b"RESULT",
                                                  b"RETURN", b"PING", b"STATS", b"BYE"]), _BODIES),
                       min_size=1, max_size=5))
def test_r9_fuzzed_frames_never_break_the_broker(small_frames_broker, frames):
    url, proc = small_frames_broker
    sock = _fuzz_socket(url)
    sock.send_multipart(frames)
    assert proc.poll() is None


_FUZZ: dict[str, zmq.Socket] = {}


def _fuzz_socket(url: str) -> zmq.Socket:
    if url not in _FUZZ:
        _FUZZ[url] = _raw_dealer(url)
    return _FUZZ[url]


def test_r9_broker_serves_after_the_fuzzing(small_frames_broker):
    url, proc = small_frames_broker
    for sock in _FUZZ.values():
        sock.close()
    _FUZZ.clear()
    client = QueueTasks(name="tests", broker_url=url)
    assert client.add_task("echo", 1).status == "new"
    assert client.broker_stats()["records"] >= 1
    assert proc.poll() is None
    client.close()


def test_r15_sigterm_lets_running_tasks_finish_and_hands_back_the_rest(tmp_path):
    with broker_process() as (url, _):
        client = QueueTasks(name="tests", broker_url=url)
        with worker_process("tests.apps.basic:app", url, "--concurrency", "3", "--grace", "10") as supervisor:
            wait_for_workers(client, 1)
            # Given three running tasks and more queued behind them
            markers = [tmp_path / f"started-{i}" for i in range(3)]
            running = [client.add_task("mark_then_nap", str(m), 0.8, i) for i, m in enumerate(markers)]
            wait_for(lambda: all(m.exists() for m in markers), 10, "three tasks to start")
            queued = [client.add_task("echo", i) for i in range(5)]
            # When the supervisor is asked to stop
            supervisor.send_signal(signal.SIGTERM)
            # Then it exits cleanly once the running tasks finished
            assert supervisor.wait(20) == 0
        assert [t.wait_result(timeout=5).returning for t in running] == [0, 1, 2]
        # and the queued ones were neither run nor lost: they wait for the next worker
        assert {client.get(t.uuid).status for t in queued} == {"new"}
        with worker_process("tests.apps.basic:app", url):
            assert [t.wait_result(timeout=20).returning for t in queued] == list(range(5))
        client.close()


def test_r15_grace_expiry_hands_running_tasks_back_uncounted_and_exits_nonzero(tmp_path):
    with broker_process() as (url, _):
        client = QueueTasks(name="tests", broker_url=url)
        with worker_process("tests.apps.basic:app", url, "--concurrency", "2", "--grace", "0.3") as supervisor:
            wait_for_workers(client, 1)
            markers = [tmp_path / f"started-{i}" for i in range(2)]
            slow = [client.add_task("mark_then_nap", str(m), 30, i) for i, m in enumerate(markers)]
            wait_for(lambda: all(m.exists() for m in markers), 10, "two tasks to start")
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(20) != 0
        records = [client.get(t.uuid) for t in slow]
        assert [(r.status, r.attempts) for r in records] == [("new", 0), ("new", 0)]
        assert client.broker_stats()["totals"]["returned"] == 2
        client.close()


def test_r15_a_second_sigterm_makes_it_a_hard_stop_with_a_nonzero_code(tmp_path):
    with broker_process() as (url, _):
        client = QueueTasks(name="tests", broker_url=url)
        with worker_process("tests.apps.basic:app", url, "--concurrency", "2", "--grace", "30") as supervisor:
            wait_for_workers(client, 1)
            markers = [tmp_path / f"started-{i}" for i in range(2)]
            slow = [client.add_task("mark_then_nap", str(m), 30, i) for i, m in enumerate(markers)]
            wait_for(lambda: all(m.exists() for m in markers), 10, "two tasks to start")
            supervisor.send_signal(signal.SIGTERM)
            wait_for(lambda: client.broker_stats()["workers"][0]["concurrency"] == 0, 10,
                     "the worker to stop taking tasks")
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(20) != 0
        assert [client.get(t.uuid).status for t in slow] == ["new", "new"]
        client.close()


def test_a_kill_of_the_whole_process_group_still_stops_gracefully(tmp_path):
    with broker_process() as (url, _):
        client = QueueTasks(name="tests", broker_url=url)
        with worker_process("tests.apps.basic:app", url, processes=2) as supervisor:
            wait_for_workers(client, 2)
            marker = tmp_path / "started"
            running = client.add_task("mark_then_nap", str(marker), 0.5, "done")
            wait_for(marker.exists, 10, "the task to start")
            # systemd-style: every process of the group gets SIGTERM at once
            os.killpg(supervisor.pid, signal.SIGTERM)
            assert supervisor.wait(20) == 0
        assert running.wait_result(timeout=5).returning == "done"
        client.close()


def test_r8_a_client_waiting_on_a_restarted_memory_broker_gets_task_lost_not_a_hang():
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from qtasks.exc import TaskLostError
    from tests.support import popen, read_line_matching, stop_process

    url = f"tcp://127.0.0.1:{free_port()}"

    def start_broker() -> subprocess.Popen:
        proc = popen([sys.executable, "-m", "broker_daemon", "--bind", url, "--heartbeat-interval", "0.1"],
                     stdout=subprocess.PIPE)
        read_line_matching(proc, "listening at", 20)
        return proc

    broker = start_broker()
    try:
        with worker_process("tests.apps.basic:app", url, "--grace", "0.5"):
            client = QueueTasks(name="tests", broker_url=url)
            wait_for_workers(client, 1)
            with ThreadPoolExecutor(1) as pool:
                # Given a client waiting for a long task
                waiting = pool.submit(client.add_task, "nap", 30, timeout=60)
                wait_for(lambda: client.broker_stats()["in_flight"] == 1, 10, "the task to start")
                # When the in-memory broker dies and a new one takes its place
                broker.kill()
                broker.wait(10)
                broker = start_broker()
                # Then the client learns its task is gone, instead of waiting a minute
                started = time.monotonic()
                with pytest.raises(TaskLostError, match="broker restarted"):
                    waiting.result(timeout=30)
                assert time.monotonic() - started < 15
            # and the worker re-registered with the new broker by itself
            wait_for_workers(client, 1)
            assert client.add_task("echo", "again", timeout=10).returning == "again"
            client.close()
    finally:
        stop_process(broker)
