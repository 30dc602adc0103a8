"""R21, R25: CURVE authentication and roles, with a real broker daemon and worker processes (loopback only).

One broker per test module serves CURVE: client keys in ``clients/``, worker keys in
``workers/``. Keys are made as pyzmq's own ``tests/test_auth.py`` makes them
(``create_certs``): all in one folder, then public keys moved where the broker reads them.
Every test that has a broker ends by checking that a fresh task still completes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid as uuid_module
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import zmq
import zmq.auth

import qtasks.asyncio
from broker_daemon.auth import Guard, exposure_refusal
from broker_daemon.core import BrokerCore
from qtasks import QueueTasks
from qtasks.cli import main as qtasks_main
from qtasks.configs import QueueConfig
from qtasks.exc import BrokerUnavailableError, ConfigError, KeyFileError, SecurityMismatchError
from qtasks.inprocess import InProcessStack
from qtasks.protocol import (
    Bye,
    Dispatch,
    Error,
    Get,
    Heartbeat,
    Message,
    Ping,
    Ready,
    Reply,
    Result,
    Return,
    StateOp,
    Stats,
    Submit,
    TaskEnvelope,
    TaskOutcome,
    Welcome,
    Yield,
    decode,
    encode,
    pack_value,
)
from qtasks.security import client_keys
from qtasks.urls import NOTHING, probe
from tests.support import ROOT, broker_process, free_port, popen, read_line_matching, wait_for, worker_process

APP = "tests.apps.basic:app"
QUEUE = "tests"
"""The queue (app name) of ``tests.apps.basic``, which the module's worker serves."""
UNSERVED = "auth-orphans"
"""A queue no worker serves: a task there stays queued, so whoever took it would show."""
FAST = 1.0
"""broker_connect_timeout of clients expected to fail: the error must come within about this."""


class Keys:
    """Paths of the key files one test module uses."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.private = base / "private"
        self.clients = base / "clients"
        self.workers = base / "workers"

    def secret(self, name: str) -> str:
        return str(self.private / f"{name}.key_secret")

    def public(self, name: str) -> str:
        return str(self.base / "public" / f"{name}.key")

    def pair(self, name: str) -> tuple[bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.secret(name))
        assert secret is not None
        return public, secret


def create_certs(base: Path) -> Keys:
    """Key pairs for the broker, a client, a worker, a stranger (in no directory) and a late worker
    (added while a test runs); public keys of clients and workers go where the broker reads them."""
    keys = Keys(base)
    made = base / "made"
    for folder in (made, keys.private, keys.clients, keys.workers, base / "public"):
        folder.mkdir(parents=True)
    for name in ("broker", "client", "worker", "stranger", "late"):
        zmq.auth.create_certificates(made, name)
    for public in made.glob("*.key"):
        shutil.copy(public, base / "public" / public.name)
    shutil.move(str(made / "client.key"), keys.clients / "client.key")
    shutil.move(str(made / "worker.key"), keys.workers / "worker.key")
    for secret in made.glob("*.key_secret"):
        os.chmod(secret, 0o600)
        shutil.move(str(secret), keys.private / secret.name)
    return keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return create_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def curve_url(keys: Keys) -> Iterator[str]:
    """A CURVE broker and one worker process (worker key) serving ``tests.apps.basic``."""
    with broker_process("--curve-secret-key", keys.secret("broker"), "--curve-clients", str(keys.clients),
                        "--curve-workers", str(keys.workers)) as (url, _):
        with worker_process(APP, url, "--curve-server-key", keys.public("broker"),
                            "--curve-secret-key", keys.secret("worker")):
            app = good_client(keys, url)
            wait_for(lambda: len(app.broker_stats()["workers"]) == 1, 30, "the worker to register")
            app.close()
            yield url


def good_client(keys: Keys, url: str, **config: Any) -> QueueTasks:
    return QueueTasks(name=QUEUE, broker_url=url, config=QueueConfig(**config),
                      curve_server_key=keys.public("broker"), curve_secret_key=keys.secret("client"))


@pytest.fixture()
def client(keys: Keys, curve_url: str) -> Iterator[QueueTasks]:
    app = good_client(keys, curve_url)
    yield app
    app.close()


def assert_a_fresh_task_completes(app: QueueTasks) -> None:
    task = app.add_task("echo", "fresh", timeout=15)
    assert task is not None and (task.status, task.returning) == ("success", "fresh")


class RawPeer:
    """A DEALER speaking the wire format by hand, with or without CURVE keys (as pyzmq's ``can_connect``)."""

    def __init__(self, url: str, server_key: Optional[bytes] = None, pair: Optional[tuple[bytes, bytes]] = None,
                 identity: Optional[bytes] = None) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if identity is not None:
            self.socket.setsockopt(zmq.IDENTITY, identity)
        if server_key is not None and pair is not None:
            self.socket.curve_serverkey = server_key
            self.socket.curve_publickey, self.socket.curve_secretkey = pair
        self.socket.connect(url)

    def send(self, message: Message) -> bool:
        """Queue ``message``; False when it cannot even be queued (ZeroMQ dropped a refused connection)."""
        try:
            self.socket.send_multipart(encode(message), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def receive(self, timeout: float) -> Optional[Message]:
        """The next message, or None when none came within ``timeout`` seconds."""
        if not self.socket.poll(int(timeout * 1000)):
            return None
        return decode(self.socket.recv_multipart())

    def ask(self, message: Message, timeout: float = 5.0) -> Optional[Message]:
        return self.receive(timeout) if self.send(message) else None

    def close(self) -> None:
        self.socket.close()


def can_connect(peer: RawPeer, timeout: float = FAST) -> bool:
    """Whether a PING through ``peer`` is answered within ``timeout``."""
    return isinstance(peer.ask(Ping(1), timeout), Reply)


# --------------------------------------------------------------------------------------- R21


def test_r21_a_good_client_key_submits_and_gets_results_from_a_worker_with_a_good_worker_key(client):
    # Given a CURVE broker and a worker process holding a worker key
    # When a client holding a client key submits and waits
    task = client.add_task("add", 2, 3, timeout=15)
    # Then the task ran on the worker and the client got its result
    assert task is not None and (task.status, task.returning) == ("success", 5)
    assert client.get(task.uuid).returning == 5
    assert client.ping()
    [worker] = client.broker_stats()["workers"]
    assert worker["queue"] == QUEUE

    # and the async face, on its I/O thread, connects with the same keys
    async def submit() -> Any:
        app = qtasks.asyncio.QueueTasks(name=QUEUE, broker_url=client.broker.url,
                                        curve_server_key=client.config.curve_server_key,
                                        curve_secret_key=client.config.curve_secret_key)
        try:
            return await app.add_task("echo", "async", timeout=15)
        finally:
            app.close()

    assert asyncio.run(submit()).returning == "async"
    assert_a_fresh_task_completes(client)


def test_r21_keys_also_come_from_qtasks_curve_variables(keys, curve_url, monkeypatch):
    monkeypatch.setenv("QTASKS_CURVE_SERVER_KEY", keys.public("broker"))
    monkeypatch.setenv("QTASKS_CURVE_SECRET_KEY", keys.secret("client"))
    monkeypatch.setenv("QTASKS_CURVE_PUBLIC_KEY", str(keys.clients / "client.key"))
    app = QueueTasks(name=QUEUE, broker_url=curve_url)
    try:
        assert app.config.curve_secret_key == keys.secret("client")
        assert_a_fresh_task_completes(app)
    finally:
        app.close()


@pytest.mark.parametrize("case", ["wrong client key", "no key", "wrong server key"])
def test_r21_a_wrong_key_no_key_or_a_wrong_server_key_fails_within_the_timeout_with_a_clear_error(
        case, keys, curve_url, client):
    # Given a client whose keys the broker cannot accept
    curve = {
        "wrong client key": dict(curve_server_key=keys.public("broker"), curve_secret_key=keys.secret("stranger")),
        "no key": {},
        "wrong server key": dict(curve_server_key=keys.public("stranger"), curve_secret_key=keys.secret("client")),
    }[case]
    refused_before = client.broker_stats()["totals"].get("refused_keys", 0)
    bad = QueueTasks(name=QUEUE, broker_url=curve_url, config=QueueConfig(broker_connect_timeout=FAST), **curve)
    started = time.monotonic()
    # When it submits
    try:
        with pytest.raises(BrokerUnavailableError) as caught:
            bad.add_task("echo", "never", timeout=10)
    finally:
        bad.close()
    # Then it fails within its connect timeout, saying what to check
    assert time.monotonic() - started < FAST + 2
    message = str(caught.value)
    if case == "no key":
        assert isinstance(caught.value, SecurityMismatchError)
        assert "requires CURVE keys and this side has none" in message and "curve_server_key" in message
    else:
        assert "may have refused them" in message and "--curve-clients" in message
        assert curve_url in message and "within 1 s" in message
    if case == "wrong client key":  # the broker counted (and logged) the refused key
        assert client.broker_stats()["totals"]["refused_keys"] > refused_before
    # and nothing of it reached the broker; a good client carries on
    assert_a_fresh_task_completes(client)


def test_r21_key_files_that_are_missing_or_malformed_are_named(keys, tmp_path):
    missing = tmp_path / "nope.key_secret"
    with pytest.raises(KeyFileError, match=re.escape(str(missing))):
        QueueTasks(name="auth-keys", curve_server_key=keys.public("broker"), curve_secret_key=str(missing))
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a certificate\n")
    with pytest.raises(KeyFileError, match=f"{re.escape(str(garbage))}.*holds no CURVE key"):
        client_keys(str(garbage), None, keys.secret("client"))
    with pytest.raises(KeyFileError, match="holds only a public key.*key_secret"):
        client_keys(keys.public("broker"), None, keys.public("client"))
    with pytest.raises(KeyFileError, match="does not belong to the secret key"):
        client_keys(keys.public("broker"), keys.public("stranger"), keys.secret("client"))
    with pytest.raises(ConfigError, match="curve_secret_key is not set"):
        client_keys(keys.public("broker"), None, None)
    # z85 text works as well as a file
    public, secret = keys.pair("client")
    assert client_keys(keys.public("broker"), None, secret.decode()).public_key == public


# --------------------------------------------------------------------------------------- R25


@pytest.fixture()
def orphan(client: QueueTasks) -> Iterator[Any]:
    """A task queued where no worker serves it (so it would leave only to a stranger taking it)."""
    app = QueueTasks(name=UNSERVED, broker_url=client.broker.url, curve_server_key=client.config.curve_server_key,
                     curve_secret_key=client.config.curve_secret_key)
    task = app.add_task("echo", "mine")
    assert task is not None and task.status == "new"
    yield task
    app.cancel(task.uuid, reason="test over")
    app.close()


@pytest.mark.parametrize("keyed", [False, True], ids=["no key", "unknown key"])
def test_r25_an_unauthenticated_peer_can_neither_take_tasks_nor_read_results(keyed, keys, client, orphan):
    # Given a raw DEALER without CURVE, or with a key the broker does not know
    url = client.broker.url
    peer = RawPeer(url, *((keys.pair("broker")[0], keys.pair("stranger")) if keyed else ()))
    try:
        # When it announces itself as a worker of the orphan's queue, and asks for the orphan's record
        peer.send(Ready(queue=UNSERVED, concurrency=5, pid=1, host="stranger"))
        peer.send(Get(2, [orphan.uuid.bytes]))
        # Then nothing at all comes back: its handshake never completes
        assert peer.receive(FAST) is None
        assert not can_connect(peer)
    finally:
        peer.close()
    # and the broker is unchanged: one worker, the orphan still queued and untouched
    stats = client.broker_stats()
    assert [w["queue"] for w in stats["workers"]] == [QUEUE]
    assert stats["queues"].get(UNSERVED, 0) >= 1 and stats["in_flight"] == 0
    assert (client.get(orphan.uuid).status, client.get(orphan.uuid).returning) == ("new", None)
    assert_a_fresh_task_completes(client)


def test_r25_a_client_key_may_not_act_as_a_worker(keys, client, orphan):
    # Given a raw DEALER holding a good *client* key, and the real worker's pid
    stats = client.broker_stats()
    [worker] = stats["workers"]
    queued = stats["queues"].get(UNSERVED)
    peer = RawPeer(client.broker.url, keys.pair("broker")[0], keys.pair("client"), identity=b"impostor")
    uuid = orphan.uuid.bytes
    try:
        assert can_connect(peer, timeout=5)
        # When it sends what only workers may send
        attempts: list[Message] = [
            Ready(queue=UNSERVED, concurrency=5, pid=4242, host="impostor"),
            Ready(queue=QUEUE, concurrency=5, pid=4243, host=worker["host"], replaces=worker["pid"],
                  cause="signal 9, SIGKILL"),
            Result([TaskOutcome(uuid, 1, "success", pack_value("forged"), None, time.time(), {})]),
            Yield([(uuid, 1, 0, pack_value("forged step"))]),
            Return([(uuid, 1)]),
            Heartbeat(),
            Bye(),
        ]
        for message in attempts:
            answer = peer.ask(message)
            # Then each is refused, naming the command and the fix
            assert isinstance(answer, Error), (message, answer)
            assert answer.code == "forbidden" and message.COMMAND.decode() in answer.message
            assert "--curve-workers" in answer.message
        # while what clients may do still works, State included
        assert isinstance(peer.ask(StateOp(7, (QUEUE, "AuthProbe", ""), "set", pack_value(["k", 1]))), Reply)
        assert isinstance(peer.ask(Stats(8)), Reply)
        submitted = peer.ask(Submit(9, None, []))
        assert isinstance(submitted, Reply)
        # and nothing was handed to it meanwhile (no DISPATCH, no WELCOME)
        assert peer.receive(0.2) is None
    finally:
        peer.close()
    # and nothing changed: the same one worker, the orphan queued and untouched, no step recorded
    after = client.broker_stats()
    assert [(w["pid"], w["queue"]) for w in after["workers"]] == [(worker["pid"], QUEUE)]
    assert after["queues"].get(UNSERVED) == queued and after["in_flight"] == 0
    assert after["totals"]["forbidden"] >= len(attempts)
    record = client.get(orphan.uuid)
    assert (record.status, record.returning) == ("new", None)
    assert_a_fresh_task_completes(client)


def test_r25_a_client_key_cannot_take_over_the_routing_id_of_a_worker_whose_connection_closed(keys):
    # Given a broker slow to declare workers lost, and a worker (worker key) named "victim" that registered
    with broker_process("--curve-secret-key", keys.secret("broker"), "--curve-clients", str(keys.clients),
                        "--curve-workers", str(keys.workers), heartbeat=1.0, liveness=30) as (url, _):
        app = QueueTasks(name="auth-hijack", broker_url=url, curve_server_key=keys.public("broker"),
                         curve_secret_key=keys.secret("client"))
        victim = RawPeer(url, keys.pair("broker")[0], keys.pair("worker"), identity=b"victim")
        assert isinstance(victim.ask(Ready(queue="auth-hijack", concurrency=4, pid=7, host="h")), Welcome)
        # When its connection closes (no BYE), and a client key connects under the same routing id
        victim.close()
        wait_for(lambda: app.broker_stats()["workers"][0]["concurrency"] == 0, 10,
                 "the broker to stop sending to the closed connection")
        impostor = RawPeer(url, keys.pair("broker")[0], keys.pair("client"), identity=b"victim")
        try:
            assert can_connect(impostor, timeout=5)
            task = app.add_task("echo", "secret")
            # Then nothing reaches it: the broker waits for a READY, which its key may not send
            assert impostor.receive(FAST) is None
            refused = impostor.ask(Ready(queue="auth-hijack", concurrency=4, pid=7, host="h"))
            assert isinstance(refused, Error) and refused.code == "forbidden"
            assert impostor.receive(0.3) is None
            assert app.get(task.uuid).status == "new"
            [worker] = app.broker_stats()["workers"]
            assert (worker["id"], worker["concurrency"]) == ("victim", 0)
        finally:
            impostor.close()
        # and the real worker, back on a new connection, is served again
        victim = RawPeer(url, keys.pair("broker")[0], keys.pair("worker"), identity=b"victim")
        try:
            victim.send(Heartbeat())
            answer = victim.receive(5)
            assert isinstance(answer, Error) and answer.code == "not-ready"
            victim.send(Ready(queue="auth-hijack", concurrency=4, pid=7, host="h"))
            answers = [victim.receive(5), victim.receive(5)]
            assert {type(m) for m in answers} == {Welcome, Dispatch}  # a dispatch goes out first
            [dispatched] = [m for m in answers if isinstance(m, Dispatch)]
            assert dispatched.deliveries[0].envelope.uuid == task.uuid.bytes
            # and what it reports counts: the broker carries on as before
            victim.send(Result([TaskOutcome(task.uuid.bytes, 1, "success", pack_value("done"), None, time.time(),
                                            {})]))
            finished = task.wait_result(10)
            assert finished is not None and (finished.status, finished.returning) == ("success", "done")
        finally:
            victim.close()
            app.close()


def test_r25_the_core_sends_nothing_to_a_suspended_worker_until_it_registers_again():
    # the sans-IO half of the test above: what the socket loop's "connection closed" does to the core
    core = BrokerCore(heartbeat_interval=1.0, heartbeat_liveness=30)

    def send(peer: bytes, message: Message) -> list[tuple[bytes, Message]]:
        core.handle(peer, message)
        return core.flush()

    send(b"w", Ready(queue="q", concurrency=2, pid=1, host="h"))
    core.connection_closed(b"w")
    envelope = TaskEnvelope(os.urandom(16), "t", "q", 0, time.time(), pack_value([[], {}]), {})
    out = send(b"c", Submit(1, None, [envelope]))
    assert not [m for _, m in out if isinstance(m, Dispatch)]
    core.tick()
    assert not [peer for peer, _ in core.flush() if peer == b"w"]  # not even heartbeats
    assert [m.code for _, m in send(b"w", Heartbeat()) if isinstance(m, Error)] == ["not-ready"]
    out = send(b"w", Ready(queue="q", concurrency=2, pid=1, host="h"))
    assert [d.envelope.uuid for _, m in out if isinstance(m, Dispatch) for d in m.deliveries] == [envelope.uuid]


class _Frame:
    def __init__(self, user_id: Optional[str]) -> None:
        self.user_id = user_id

    def get(self, name: str) -> str:
        if self.user_id is None:
            raise zmq.ZMQError(zmq.EINVAL)
        assert name == "User-Id"
        return self.user_id


def test_r25_the_role_table():
    guard = Guard()
    worker_only = [Ready(queue="q", concurrency=1, pid=1, host="h"), Heartbeat(), Result([]), Yield([]),
                   Return([]), Bye()]
    anyone = [Submit(1, None, []), Get(1, []), Stats(1), Ping(1), StateOp(1, ("a", "b", ""), "get", b"\x90")]
    for message in worker_only + anyone:
        assert guard.refusal(_Frame("worker:KEY"), message) is None
        refused = guard.refusal(_Frame("client:KEY"), message)
        assert (refused is not None) == (message in worker_only), message
        assert guard.refusal(_Frame(None), message) is not None  # no verdict, no role
        assert guard.refusal(_Frame("admin:KEY"), message) is not None


def test_a_worker_with_an_unknown_key_says_so_and_joins_once_its_key_is_added(keys, client, tmp_path):
    # Given a worker process whose key the broker does not know
    log = tmp_path / "worker.log"
    with open(log, "w") as sink, worker_process(APP, client.broker.url, "--curve-server-key", keys.public("broker"),
                                                "--curve-secret-key", keys.secret("late"), stderr=sink):
        # Then it says why it cannot join, instead of waiting in silence
        refused = wait_for(lambda: re.search(r"refused this worker's CURVE key (\S+) .*--curve-workers",
                                             log.read_text()), 20, "the worker to report the refusal")
        assert refused.group(1) == keys.pair("late")[0].decode()
        assert len(client.broker_stats()["workers"]) == 1
        # When its public key is added to the broker's workers directory, it joins without a restart
        shutil.copy(keys.public("late"), keys.workers / "late.key")
        try:
            wait_for(lambda: len(client.broker_stats()["workers"]) == 2, 20, "the late worker to join")
        finally:
            os.remove(keys.workers / "late.key")
        assert_a_fresh_task_completes(client)
    wait_for(lambda: len(client.broker_stats()["workers"]) == 1, 20, "the late worker to leave")
    assert_a_fresh_task_completes(client)


# ------------------------------------------------------------------------------- exposure


@pytest.mark.parametrize("url, exposed", [
    ("tcp://127.0.0.1:5555", False), ("tcp://127.8.9.10:0", False), ("tcp://[::1]:5555", False),
    ("tcp://localhost:5555", False), ("ipc:///tmp/qtasks.sock", False), ("inproc://qtasks", False),
    ("tcp://0.0.0.0:5555", True), ("tcp://*:5555", True), ("tcp://10.1.2.3:5555", True),
    ("tcp://[::]:5555", True), ("tcp://broker.example.com:5555", True), ("tcp://eth0:5555", True),
])
def test_only_loopback_and_local_endpoints_may_go_without_keys(url, exposed):
    refusal = exposure_refusal(url, curve=False, insecure=False)
    assert (refusal is not None) == exposed
    if exposed:
        assert "--curve-secret-key" in refusal and "--insecure" in refusal and "127.0.0.1" in refusal
    # keys, or the operator's word that the network is trusted, lift the refusal
    assert exposure_refusal(url, curve=True, insecure=False) is None
    assert exposure_refusal(url, curve=False, insecure=True) is None


def broker_exits(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTASKS_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "broker_daemon", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=30)


def test_a_non_loopback_bind_without_keys_refuses_to_start_before_binding(keys):
    # Given a port nothing listens on, on every interface
    port = free_port()
    # When the broker is asked to serve it openly without keys
    result = broker_exits("--bind", f"tcp://0.0.0.0:{port}")
    # Then it exits with code 2 at once, naming the fixes, and never listened
    assert result.returncode == 2, result
    assert "refusing to serve tcp://0.0.0.0" in result.stderr and "--insecure" in result.stderr
    assert "listening" not in result.stdout
    assert probe(f"tcp://127.0.0.1:{port}")[0] == NOTHING
    # and broken CURVE settings stop it the same way, naming what is wrong
    missing = broker_exits("--bind", "tcp://127.0.0.1:0", "--curve-secret-key", "/nonexistent/broker.key_secret",
                           "--curve-workers", str(keys.workers))
    assert missing.returncode == 2 and "/nonexistent/broker.key_secret" in missing.stderr
    no_secret = broker_exits("--bind", "tcp://127.0.0.1:0", "--curve-clients", str(keys.clients))
    assert no_secret.returncode == 2 and "--curve-clients need --curve-secret-key" in no_secret.stderr
    no_dirs = broker_exits("--bind", "tcp://127.0.0.1:0", "--curve-secret-key", keys.secret("broker"))
    assert no_dirs.returncode == 2 and "--curve-workers" in no_dirs.stderr


# ------------------------------------------------------------------------------- keys and serving


def test_keys_generate_writes_secret_files_0600_in_a_layout_the_broker_reads(tmp_path, capsys):
    directory = tmp_path / "keys"
    # When the three standard pairs are made
    assert qtasks_main(["keys", "generate", str(directory)]) == 0
    # Then secret keys are readable by their owner only, public keys by anyone
    for role, public in (("broker", "broker.key"), ("client", "clients/client.key"),
                         ("worker", "workers/worker.key")):
        assert stat.S_IMODE((directory / f"{role}.key_secret").stat().st_mode) == 0o600
        assert stat.S_IMODE((directory / public).stat().st_mode) == 0o644
    assert not list(directory.glob(".qtasks-keys-*"))  # no private folder left behind
    # and they fit together: a client's settings load, the public key in clients/ belongs to it
    loaded = client_keys(str(directory / "broker.key"), str(directory / "clients" / "client.key"),
                         str(directory / "client.key_secret"))
    assert loaded is not None and loaded.server_key == zmq.auth.load_certificate(directory / "broker.key")[0]
    assert "--curve-clients" in capsys.readouterr().out
    # When asked again, nothing is overwritten
    before = (directory / "client.key_secret").read_bytes()
    assert qtasks_main(["keys", "generate", str(directory)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert (directory / "client.key_secret").read_bytes() == before
    # and one more named pair goes where its role belongs
    assert qtasks_main(["keys", "generate", str(directory), "--name", "web1", "--role", "worker"]) == 0
    assert stat.S_IMODE((directory / "web1.key_secret").stat().st_mode) == 0o600
    assert (directory / "workers" / "web1.key").exists()


def test_qtasks_run_with_a_missing_key_file_exits_naming_it(keys):
    proc = popen([sys.executable, "-m", "qtasks", "-A", APP, "run", "--processes", "1",
                  "--broker", f"tcp://127.0.0.1:{free_port()}", "--curve-server-key", keys.public("broker"),
                  "--curve-secret-key", "/nonexistent/worker.key_secret"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "/nonexistent/worker.key_secret" in err, err


def test_a_keyed_app_never_hosts_a_keyless_broker(keys):
    # Given nothing listening at the app's URL, and workers with CURVE keys
    url = f"tcp://127.0.0.1:{free_port()}"
    with worker_process(APP, url, "--curve-server-key", keys.public("broker"), "--curve-secret-key",
                        keys.secret("worker"), stderr=subprocess.PIPE) as proc:
        # Then the supervisor hosts no broker there (it would have no keys), and says so
        read_line_matching(proc, r"does not host a broker", 20, stream="stderr")
        assert probe(url)[0] == NOTHING


def test_the_embedded_in_process_broker_stays_keyless_for_a_keyed_app(keys):
    # Given an app with CURVE keys, served in this process over inproc:// (no handshake there)
    app = QueueTasks(name=f"auth-inproc-{uuid_module.uuid4().hex[:6]}", curve_server_key=keys.public("broker"),
                     curve_secret_key=keys.secret("client"))

    @app.task
    def double(x: int) -> int:
        return 2 * x

    with InProcessStack(app, workers=1):
        task = double.add_task(21, timeout=10)
    assert task is not None and task.returning == 42

