"""``add_task`` without a timeout does not wait for the broker: it is pipelined, and the results of
the tasks a client submitted are pushed to it. What that must keep true: nothing is lost at exit,
a refusal still reaches the caller, and a request right after ``add_task`` finds the task."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from broker_daemon.limits import QueueLimits
from qtasks import QueueTasks
from qtasks.client.session import ClientSession
from qtasks.exc import QueueFullError
from qtasks.inprocess import InProcessStack
from tests.apps import basic
from tests.support import ROOT, broker_process

WAIT = 30.0


def test_results_are_pushed_so_waiting_needs_no_request(monkeypatch):
    with InProcessStack(basic.app, workers=2):
        basic.app.add_task("echo", -1, timeout=WAIT)  # the connection has answered: later submits pipeline
        handles = [basic.app.add_task("echo", i) for i in range(200)]
        asked = []
        monkeypatch.setattr(ClientSession, "_send_wait", lambda *args, **kwargs: asked.append(args))
        assert [h.wait_result(timeout=WAIT).returning for h in handles] == list(range(200))
        assert asked == [], "a wait asked the broker for a result it pushes anyway"


def test_a_request_right_after_add_task_finds_the_task():
    app = QueueTasks(name="unserved")
    with InProcessStack(app, workers=0):
        app.add_task("anything", -1)
        for i in range(50):
            task = app.add_task("anything", i)
            found = app.get(task.uuid)
            assert found is not None and found.status == "new", f"submit #{i} was not taken before the get"
            assert app.cancel(task.uuid, "not needed").status == "cancel"


def test_a_refused_pipelined_submit_surfaces_on_the_next_call_and_on_wait():
    app = QueueTasks(name="refusals")
    with InProcessStack(app, workers=0, limits=QueueLimits(max_tasks=3)):
        app.add_task("anything", 0)  # answered at once: the queue holds 1 of 3
        handles = []
        errors = []
        try:
            for i in range(1, 50):
                handles.append(app.add_task("anything", i))
            app.get(handles[0].uuid)  # the call after them, at the latest, raises the refusal
        except QueueFullError as exc:
            errors.append(exc)
        assert errors, "a refusal of a pipelined submit must reach the caller"
        assert any("earlier add_task" in note for note in getattr(errors[0], "__notes__", []))
        for _ in range(len(handles)):  # each refused SUBMIT is raised once; then calls go through again
            try:
                app.get(handles[0].uuid)
                break
            except QueueFullError:
                pass
        found = [app.get(h.uuid) for h in handles]
        refused = [h for h, f in zip(handles, found, strict=True) if f is None]
        assert refused and len(refused) >= len(handles) - 2
        with pytest.raises(QueueFullError):
            refused[-1].wait_result(timeout=5)


EXITS_RIGHT_AFTER = textwrap.dedent("""
    import sys
    from qtasks import QueueTasks
    app = QueueTasks(name="exiting", broker_url=sys.argv[1])
    first = app.add_task("anything", 0)
    uuids = [str(first.uuid)] + [str(app.add_task("anything", i).uuid) for i in range(1, 2000)]
    print(" ".join(uuids), flush=True)
""")


def test_a_process_that_exits_right_after_add_task_delivers_every_task():
    with broker_process() as (url, _):
        done = subprocess.run([sys.executable, "-c", EXITS_RIGHT_AFTER, url], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        uuids = done.stdout.split()
        assert len(uuids) == 2000
        probe = QueueTasks(name="exiting", broker_url=url)
        try:
            missing = [u for u in uuids if probe.get(u) is None]
        finally:
            probe.close()
        assert missing == []


def test_closing_the_app_right_after_add_task_delivers_the_task():
    app = QueueTasks(name="closing")
    with InProcessStack(app, workers=0) as stack:
        app.add_task("anything", 0)
        handles = [app.add_task("anything", i) for i in range(1, 300)]
        app.broker.close()  # the pipelined submits go out (and are acknowledged) before the socket closes
        probe = QueueTasks(name="closing", broker_url=stack.url)
        try:
            assert all(probe.get(h.uuid) is not None for h in handles)
        finally:
            probe.close()
