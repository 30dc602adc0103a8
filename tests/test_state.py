"""State: one actor beside the broker owns the data; tasks in every process share it."""

from __future__ import annotations

import ast
import subprocess

import msgpack
import pytest
import zmq

import qtasks.plugins
import qtasks.plugins.states
import qtasks.plugins.states.fsm
from broker_daemon.state import StateActor, StateOpError
from qtasks import QueueTasks
from qtasks.exc import StateError, UnserializableArgumentError
from qtasks.plugins import SyncState
from qtasks.protocol import HEADER, pack_value, unpack_value
from tests.support import broker_process, read_line_matching, wait_for_workers, worker_process

NS = ("app", "MyState", "")


def test_import_paths():
    assert qtasks.plugins.AsyncState is qtasks.plugins.states.AsyncState is qtasks.plugins.states.fsm.AsyncState
    assert qtasks.plugins.SyncState is qtasks.plugins.states.SyncState


def apply(actor: StateActor, op: str, *args, namespace=NS):
    return unpack_value(actor.apply(namespace, op, pack_value(list(args))))


def test_actor_operations():
    actor = StateActor()
    assert apply(actor, "get") == {} and apply(actor, "get", "missing", 7) == 7
    assert apply(actor, "set", "state", "await_phone") is None
    assert apply(actor, "update", {"step": 1}) == {"state": "await_phone", "step": 1}
    assert apply(actor, "incr", "step") == 2 and apply(actor, "incr", "step", 0.5) == 2.5
    assert apply(actor, "incr", "fresh", 3) == 3
    assert apply(actor, "setdefault", "state", "other") == "await_phone"
    assert apply(actor, "setdefault", "new", [1, 2]) == [1, 2]
    assert apply(actor, "pop", "new") == [1, 2] and apply(actor, "pop", "new", "gone") == "gone"
    assert apply(actor, "delete", "state") is None and apply(actor, "delete", "nothing") is None
    assert apply(actor, "get_all") == {"step": 2.5, "fresh": 3}
    # a scope is its own namespace of the same class
    assert apply(actor, "get_all", namespace=("app", "MyState", "user-42")) == {}
    assert apply(actor, "clear") is None and apply(actor, "get_all") == {}


def test_scopes_of_a_class_are_found_by_pattern():
    actor = StateActor()
    for scope, value in (("main", 1), ("main-eu", 2), ("backup", 3)):
        apply(actor, "set", "status", value, namespace=("app", "GlobalConfig", scope))
    apply(actor, "set", "status", 9, namespace=("other-app", "GlobalConfig", "main-x"))
    assert apply(actor, "scopes", "main*", namespace=("app", "GlobalConfig", "")) == {
        "main": {"status": 1}, "main-eu": {"status": 2}}
    assert apply(actor, "scopes", "*", namespace=("app", "GlobalConfig", ""))["backup"] == {"status": 3}


@pytest.mark.parametrize("op, args, needle", [
    ("explode", [], "unknown state operation 'explode'"),
    ("set", [1, "v"], "keys must be strings"),
    ("incr", ["k", "one"], "needs a number"),
    ("update", [[1, 2]], "takes a mapping"),
    ("get", [None, None, None], "bad arguments"),
])
def test_actor_refuses_bad_operations_with_a_reason(op, args, needle):
    actor = StateActor()
    with pytest.raises(StateOpError, match=needle):
        actor.apply(NS, op, pack_value(args))
    with pytest.raises(StateOpError, match="not valid msgpack"):
        actor.apply(NS, "get", b"\xc1")


def test_incr_of_text_is_refused_and_leaves_it():
    actor = StateActor()
    apply(actor, "set", "name", "text")
    with pytest.raises(StateOpError, match="holds a str"):
        apply(actor, "incr", "name")
    assert apply(actor, "get", "name") == "text"


def test_state_through_the_daemon_from_a_client(tmp_path):
    class Profile(SyncState):
        pass

    with broker_process() as (url, _):
        app = QueueTasks(name="state-client", broker_url=url)
        profile = Profile(app)
        profile.set("name", "Ada")
        assert profile.update(age=36) == {"name": "Ada", "age": 36}
        assert profile.incr("visits") == 1 and profile.incr("visits", 2) == 3
        user = Profile.scope("user-42")
        user._app = app
        assert user.get_all() == {}
        user.set("step", 1)
        assert profile.scope("user-42").get("step") == 1 and profile.get("step") is None
        with pytest.raises(StateError, match="holds a str") as caught:
            profile.incr("name")
        assert isinstance(caught.value, ValueError)
        with pytest.raises(UnserializableArgumentError):
            profile.set("bad", object())
        with pytest.raises(TypeError, match="scope is a string"):
            Profile.scope(42)
        # a raw, malformed STATE message gets an error reply and the actor keeps serving
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(url)
        sock.send_multipart([HEADER, b"STATE", msgpack.packb([1, ["a", "b"], "get", b""])])
        assert msgpack.unpackb(sock.recv_multipart()[2])[1] == "malformed"
        sock.send_multipart([HEADER, b"STATE", msgpack.packb([2, ["a", "b", ""], "drop_all", pack_value([])])])
        req_id, code, message = msgpack.unpackb(sock.recv_multipart()[2])
        assert (req_id, code) == (2, "state") and "unknown state operation" in message
        sock.close()
        assert profile.get("name") == "Ada"
        assert app.broker_stats()["state"] == {"namespaces": 2, "keys": 4}
        app.close()


def test_seed_state_example_across_two_processes():
    with broker_process() as (url, _), worker_process("tests.apps.seeds:app", url, processes=2,
                                                      env={"PYTHONUNBUFFERED": "1"},
                                                      stdout=subprocess.PIPE) as workers:
        client = QueueTasks(name="seeds", broker_url=url)
        wait_for_workers(client, 2)
        assert client.add_task("step1", timeout=10).returning == "ok"
        assert client.add_task("step2", timeout=10).returning == "ok"
        printed = read_line_matching(workers, r"^\{.*\}$", 10).group(0)
        assert ast.literal_eval(printed) == {"state": "await_phone", "step": 1, "prompt": "Введите телефон"}
        assert printed == "{'state': 'await_phone', 'step': 1, 'prompt': 'Введите телефон'}"
        # step2 cleared it: running it again finds nothing
        assert client.add_task("step2", timeout=10).returning == "error"
        client.close()


def test_a_value_written_in_one_process_is_read_in_another():
    with broker_process() as (url, _), worker_process("tests.apps.deps:app", url, processes=2):
        client = QueueTasks(name="deps", broker_url=url)
        pids = wait_for_workers(client, 2)
        seen = set()
        for i in range(40):  # until a read lands on another process than the write
            writer = client.add_task("remember", f"k{i}", {"i": i}, timeout=10).returning
            reader, value = client.add_task("recall", f"k{i}", timeout=10).returning
            assert value == {"i": i}
            seen.add((writer, reader))
            if writer != reader:
                break
        assert any(w != r for w, r in seen) and {p for pair in seen for p in pair} <= pids
        client.close()


def test_eight_processes_contending_lose_nothing():
    # 8 busy processes on a small machine: heartbeats lenient enough that none is falsely
    # declared lost (a false verdict would redeliver tasks, and at-least-once means twice)
    with broker_process(heartbeat=0.5, liveness=6) as (url, _), \
            worker_process("tests.apps.deps:app", url, processes=8):
        client = QueueTasks(name="deps", broker_url=url)
        wait_for_workers(client, 8, timeout=60)
        results = client.add_tasks([("count", [i], {}) for i in range(800)], timeout=120)
        assert all(t is not None and t.status == "success" for t in results)
        assert len({t.returning for t in results}) == 8  # every process took part

        import asyncio

        from tests.apps.deps import Counter

        async def read() -> dict:
            return await Counter(client).get_all()

        data = asyncio.run(read())
        assert data["counter"] == 800
        assert {k for k in data if k.startswith("key-")} == {f"key-{i}" for i in range(800)}
        client.close()
