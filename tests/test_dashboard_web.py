"""The dashboard's web layer over HTTP: pages, live fragments, JSON, actions and their guards.

The broker is a fake OpsClient here (``FakeOps``: the contract's shapes, records in a dict),
so these tests are about the web layer alone; ``test_dashboard_browser`` runs the real thing.
The Starlette test client runs the app's lifespan, so the gateway's thread pool is real.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any, Iterator
from uuid import uuid4

import pytest
from starlette.testclient import TestClient

from qtasks.dashboard.app import create_app
from qtasks.dashboard.security import MAX_BODY
from qtasks.dashboard.settings import DashboardSettings, parse_bind
from qtasks.exc import BrokerUnavailableError, ConfigError, TaskNotFoundError

BASE = "http://127.0.0.1:8080"
ORIGIN = {"origin": BASE}
FAILED = str(uuid.uuid4())
RUNNING = str(uuid.uuid4())


def record(task_id: str, name: str, status: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {"uuid": task_id, "name": name, "queue": "default", "status": status, "priority": 0,
            "created_at": now - 5, "updated_at": now, "args": [1, "<b>x</b>"], "kwargs": {"k": "v"},
            "returning": None, "traceback": None, "steps": [], "retry_of": None, "retries": [], **extra}


class Broker:
    """What the fake clients share: task records, and every call with the thread that made it."""

    def __init__(self) -> None:
        self.records = {
            FAILED: record(FAILED, "flaky", "error", traceback="Traceback...\nValueError: first time fails"),
            RUNNING: record(RUNNING, "slow", "process"),
        }
        self.calls: list[tuple[str, int, int]] = []
        self.down = False
        self.lock = threading.Lock()
        self.clients: list[FakeOps] = []


class FakeOps:
    """The OpsClient contract, answered from ``Broker``; records which thread uses which client."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.closed = False
        self.closed_by: int | None = None
        self.users: set[int] = set()
        with broker.lock:
            broker.clients.append(self)

    def _call(self, name: str) -> None:
        assert not self.closed, "a closed client was used"
        self.users.add(threading.get_ident())
        with self.broker.lock:
            self.broker.calls.append((name, id(self), threading.get_ident()))
        if self.broker.down:
            raise BrokerUnavailableError("tcp://127.0.0.1:1", 0.1)

    def status(self) -> dict[str, Any]:
        self._call("status")
        now = time.time()
        return {
            "broker": {"url": "tcp://127.0.0.1:1", "boot_id": "b00t", "uptime": 3723.0, "durable": False,
                       "version": "9.9"},
            "queues": [{"name": "default", "depth": 7, "by_priority": {"5": 2, "0": 5}, "delayed": 1, "dead": 1}],
            "workers": [{"id": "w-1", "host": "box", "pid": 4242, "queue": "default", "slots": 4,
                         "joined_at": now - 60, "running": [{"uuid": RUNNING, "name": "slow", "since": now - 3}]}],
            "rates": {"submitted": 2.5, "finished": 2.0, "failed": 0.25},
            "totals": {"submitted": 150, "failed": 15},
            "failures": [{"exception": "ValueError", "count": 3,
                          "last": {"uuid": FAILED, "name": "flaky", "at": now - 1, "message": "first time fails"}}],
            "timers": [{"app": "demo", "task": "tick", "trigger": "interval[0:00:05]", "next_fire": now + 4}],
        }

    def tasks(self, *, status: str | None = None, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        self._call("tasks")
        found = [r for r in self.broker.records.values()
                 if (status is None or r["status"] == status) and (name is None or r["name"] == name)]
        return found[:limit]

    def inspect(self, uuid: str) -> dict[str, Any]:
        self._call("inspect")
        if uuid not in self.broker.records:
            raise TaskNotFoundError(uuid, "tcp://127.0.0.1:1")
        return self.broker.records[uuid]

    def cancel(self, uuid: str, reason: str | None = None) -> bool:
        self._call("cancel")
        found = self.broker.records.get(uuid)
        if found is None or found["status"] not in ("new", "process"):
            return False
        found["status"] = "cancel"
        return True

    def retry(self, uuid: str) -> str:
        self._call("retry")
        new = str(uuid4())
        self.broker.records[uuid]["retries"].append(new)
        self.broker.records[new] = record(new, self.broker.records[uuid]["name"], "new", retry_of=uuid)
        return new

    def dead_letters(self, *, limit: int = 100) -> dict[str, Any]:
        self._call("dead_letters")
        dead = [r for r in self.broker.records.values() if r["status"] == "error"]
        return {"count": len(dead), "dead_letters": dead[:limit]}

    def retry_all_dead(self) -> int:
        self._call("retry_all_dead")
        dead = [r["uuid"] for r in self.broker.records.values() if r["status"] == "error" and not r["retries"]]
        for task_id in dead:
            self.retry(task_id)
        return len(dead)

    def close(self) -> None:
        self.closed = True
        self.closed_by = threading.get_ident()


def dashboard(broker: Broker, **settings: Any) -> TestClient:
    app = create_app(DashboardSettings(broker_url="tcp://127.0.0.1:1", **settings), lambda: FakeOps(broker))
    return TestClient(app, base_url=BASE, follow_redirects=False)


@pytest.fixture()
def broker() -> Broker:
    return Broker()


@pytest.fixture()
def client(broker: Broker) -> Iterator[TestClient]:
    with dashboard(broker) as test_client:
        yield test_client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


# pages


def test_overview_shows_the_facts_of_status(client):
    page = client.get("/")

    assert page.status_code == 200
    text = page.text
    for fact in ("9.9", "1 h 02 min", "default", "p0: 5", "p5: 2", "box", "4242", "1/4", "slow",
                 "2.50/s", "0.25/s", "ValueError", "first time fails", "interval[0:00:05]", "tick",
                 "Dead letters", "retry all"):
        assert fact in text, fact
    assert text.index("p0: 5") < text.index("p5: 2")  # priorities in order
    assert f'action="/tasks/{FAILED}/retry"' in text and f'action="/tasks/{FAILED}/cancel"' in text
    assert f'action="/tasks/{RUNNING}/cancel"' in text


def test_the_live_part_comes_alone_when_the_page_script_asks(client):
    full = client.get("/")
    fragment = client.get("/", headers={"x-qtasks-fragment": "1"})

    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<html" in full.text
    assert 'id="queues"' in fragment.text
    assert "x-qtasks-fragment" in fragment.headers["vary"].lower()


def test_task_list_filters_by_status_and_name(client):
    everything = client.get("/tasks")
    failed = client.get("/tasks", params={"status": "error"})
    by_name = client.get("/tasks", params={"name": "slow"})

    assert FAILED in everything.text and RUNNING in everything.text
    assert FAILED in failed.text and RUNNING not in failed.text
    assert RUNNING in by_name.text and FAILED not in by_name.text


def test_task_list_refuses_a_bad_filter(client):
    page = client.get("/tasks", params={"status": "nonsense"})
    api = client.get("/api/tasks", params={"name": "x" * 500})

    assert page.status_code == 400 and "unknown status" in page.text
    assert api.status_code == 400 and "at most 200" in api.json()["error"]


def test_task_page_shows_arguments_traceback_and_chain(client, broker):
    child = str(uuid.uuid4())
    broker.records[FAILED]["retries"].append(child)
    broker.records[child] = record(child, "flaky", "success", returning={"answer": 42}, retry_of=FAILED,
                                   steps=[1, 2])

    parent = client.get(f"/tasks/{FAILED}").text
    page = client.get(f"/tasks/{child}").text

    assert "ValueError: first time fails" in parent and f'href="/tasks/{child}"' in parent
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page  # escaped
    assert "&#34;answer&#34;: 42" in page and 'class="steps"' in page
    chain = page[page.index('id="chain"'):]
    assert chain.index(f'href="/tasks/{FAILED}"') < chain.index(f'href="/tasks/{child}"')  # oldest first
    assert "status-error" in chain and "status-success" in chain


def test_a_retry_chain_is_followed_both_ways_and_bounded(client, broker):
    ids = [str(uuid4()) for _ in range(30)]
    for index, task_id in enumerate(ids):
        broker.records[task_id] = record(task_id, "flaky", "error", retry_of=ids[index - 1] if index else None,
                                         retries=[ids[index + 1]] if index + 1 < len(ids) else [])

    chain = client.get(f"/tasks/{ids[15]}").text.split('id="chain"')[1]

    shown = [task_id for task_id in ids if f'href="/tasks/{task_id}"' in chain]
    assert shown == ids[5:26]  # ten attempts either side, oldest first


def test_unknown_and_malformed_task_ids_are_404(client):
    unknown = client.get(f"/tasks/{uuid.uuid4()}")
    assert unknown.status_code == 404 and "has no task" in unknown.text
    assert client.get("/tasks/not-a-uuid").status_code == 404
    assert client.get("/api/tasks/not-a-uuid").status_code == 404


def test_json_endpoints(client):
    assert client.get("/api/status").json()["queues"][0]["depth"] == 7
    assert {t["uuid"] for t in client.get("/api/tasks", params={"status": "error"}).json()} == {FAILED}
    assert client.get(f"/api/tasks/{FAILED}").json()["name"] == "flaky"
    assert client.get("/api/dead").json()["count"] == 1


def test_a_broker_that_does_not_answer_is_a_clear_503(client, broker):
    broker.down = True

    page = client.get("/")
    api = client.get("/api/status")

    assert page.status_code == 503 and "no QTasks broker answered" in page.text
    assert api.status_code == 503 and "qtasks-broker" in api.json()["error"]
    broker.down = False
    assert client.get("/").status_code == 200  # a new client once it answers again


def test_static_files_and_security_headers(client):
    script = client.get("/static/dashboard.js")
    page = client.get("/")

    assert script.status_code == 200 and "X-QTasks-Fragment" in script.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


# actions


def test_retry_through_the_form_makes_a_new_attempt(client, broker):
    token = csrf_of(client.get("/").text)

    answer = client.post(f"/tasks/{FAILED}/retry", data={"csrf": token, "back": "/"}, headers=ORIGIN)

    assert answer.status_code == 303
    new_id = answer.headers["location"].rsplit("/", 1)[1]
    assert broker.records[new_id]["retry_of"] == FAILED
    page = client.get(answer.headers["location"]).text
    assert "this is the new attempt" in page  # the flash message, once
    assert "this is the new attempt" not in client.get(answer.headers["location"]).text


def test_cancel_and_retry_all(client, broker):
    token = csrf_of(client.get("/").text)

    cancelled = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token}, headers=ORIGIN)
    cancelled_page = client.get(cancelled.headers["location"]).text
    again = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token}, headers=ORIGIN)
    again_page = client.get(again.headers["location"]).text
    retried = client.post("/dead/retry-all", data={"csrf": token}, headers=ORIGIN)

    assert cancelled.status_code == 303 and broker.records[RUNNING]["status"] == "cancel"
    assert f"cancelled task {RUNNING}" in cancelled_page
    assert "not cancelled: it has ended already" in again_page
    assert retried.status_code == 303 and "retried 1 dead letter(s)" in client.get("/").text
    assert broker.records[FAILED]["retries"]


def test_actions_refuse_get(client, broker):
    for path in (f"/tasks/{FAILED}/retry", f"/tasks/{RUNNING}/cancel", "/dead/retry-all", "/logout"):
        assert client.get(path).status_code == 405, path
    assert broker.records[RUNNING]["status"] == "process" and not broker.records[FAILED]["retries"]


def test_actions_refuse_a_missing_or_wrong_csrf_token(client, broker):
    token = csrf_of(client.get("/").text)

    missing = client.post(f"/tasks/{RUNNING}/cancel", data={}, headers=ORIGIN)
    wrong = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token[:-2] + "xx"}, headers=ORIGIN)
    other_session = dashboard(broker)
    with other_session:
        other_session.get("/")
        stolen_elsewhere = other_session.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token}, headers=ORIGIN)

    assert missing.status_code == wrong.status_code == stolen_elsewhere.status_code == 403
    assert "token" in wrong.text
    assert broker.records[RUNNING]["status"] == "process"


def test_actions_refuse_another_origin_even_with_the_token(client, broker):
    token = csrf_of(client.get("/").text)

    foreign = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token}, headers={"origin": "http://evil.example"})
    no_origin = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token})
    foreign_referer = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token},
                                  headers={"referer": "http://evil.example/page"})
    own_referer = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token}, headers={"referer": f"{BASE}/"})

    assert foreign.status_code == no_origin.status_code == foreign_referer.status_code == 403
    assert own_referer.status_code == 303 and broker.records[RUNNING]["status"] == "cancel"


def test_action_redirects_stay_on_this_site(client):
    token = csrf_of(client.get("/").text)

    answer = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token, "back": "//evil.example/x"},
                         headers=ORIGIN)

    assert answer.headers["location"] == f"/tasks/{RUNNING}"


def test_request_bodies_are_bounded(client, broker):
    token = csrf_of(client.get("/").text)

    big = client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token, "reason": "x" * (MAX_BODY + 1)},
                      headers=ORIGIN)

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"reason=" + b"x" * 1024

    streamed = client.post(f"/tasks/{RUNNING}/cancel", content=chunks(),
                           headers={**ORIGIN, "content-type": "application/x-www-form-urlencoded"})

    assert big.status_code == streamed.status_code == 413
    assert broker.records[RUNNING]["status"] == "process"


def test_a_foreign_host_name_is_refused_on_loopback(broker):
    with dashboard(broker) as test_client:
        rebound = test_client.get("/", headers={"host": "evil.example:8080"})
        local = test_client.get("/", headers={"host": "localhost:8080"})

    assert rebound.status_code == 400
    assert local.status_code == 200


# the password


def test_with_a_password_every_page_needs_it(broker):
    with dashboard(broker, password="s3cret") as test_client:
        page = test_client.get("/tasks")
        fragment = test_client.get("/", headers={"x-qtasks-fragment": "1"})
        api = test_client.get("/api/status")
        action = test_client.post(f"/tasks/{RUNNING}/cancel", data={}, headers=ORIGIN)
        static = test_client.get("/static/dashboard.css")

    assert page.status_code == 303 and page.headers["location"] == "/login?next=/tasks"
    assert fragment.status_code == api.status_code == action.status_code == 401
    assert static.status_code == 200
    assert broker.calls == []  # nothing reached the broker


def test_logging_in_with_the_password(broker):
    with dashboard(broker, password="s3cret") as test_client:
        form = test_client.get("/login?next=/tasks")
        token = csrf_of(form.text)
        started = time.monotonic()
        wrong = test_client.post("/login", data={"csrf": token, "password": "guess", "next": "/tasks"},
                                 headers=ORIGIN)
        wrong_took = time.monotonic() - started
        right = test_client.post("/login", data={"csrf": token, "password": "s3cret", "next": "/tasks"},
                                 headers=ORIGIN)
        after = test_client.get("/tasks")
        old_token_after_login = test_client.post(f"/tasks/{RUNNING}/cancel", data={"csrf": token},
                                                 headers=ORIGIN)
        logout = test_client.post("/logout", data={"csrf": csrf_of(after.text)}, headers=ORIGIN)
        after_logout = test_client.get("/tasks")

    assert wrong.status_code == 401 and "wrong password" in wrong.text and wrong_took >= 0.4
    assert right.status_code == 303 and right.headers["location"] == "/tasks"
    assert after.status_code == 200 and FAILED in after.text
    assert old_token_after_login.status_code == 403  # a token from before login is not kept
    assert logout.status_code == 303 and after_logout.status_code == 303


def test_login_itself_needs_the_token_and_origin(broker):
    with dashboard(broker, password="s3cret") as test_client:
        token = csrf_of(test_client.get("/login").text)
        no_token = test_client.post("/login", data={"password": "s3cret"}, headers=ORIGIN)
        foreign = test_client.post("/login", data={"csrf": token, "password": "s3cret"},
                                   headers={"origin": "http://evil.example"})

    assert no_token.status_code == foreign.status_code == 403


# settings


def test_a_non_loopback_bind_needs_a_password():
    with pytest.raises(ConfigError, match="without a password"):
        DashboardSettings(broker_url="tcp://127.0.0.1:1", host="0.0.0.0")
    with pytest.raises(ConfigError, match="without a password"):
        DashboardSettings(broker_url="tcp://127.0.0.1:1", host="dashboard.example")
    assert DashboardSettings(broker_url="tcp://127.0.0.1:1", host="0.0.0.0", password="pw").password == "pw"
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        assert DashboardSettings(broker_url="tcp://127.0.0.1:1", host=host).loopback
    with pytest.raises(ConfigError, match="empty"):
        DashboardSettings(broker_url="tcp://127.0.0.1:1", password="")


def test_a_non_loopback_dashboard_answers_any_host_name_after_login(broker):
    with dashboard(broker, host="0.0.0.0", password="pw") as test_client:
        page = test_client.get("/", headers={"host": "dash.example:8080"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9000", ("127.0.0.1", 9000)), (":0", ("127.0.0.1", 0)), ("localhost", ("localhost", 8080)),
    ("[::1]:8081", ("::1", 8081)), ("0.0.0.0:80", ("0.0.0.0", 80)),
])
def test_parse_bind(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["::1:80", "127.0.0.1:http", "127.0.0.1:70000", "[::1"])
def test_parse_bind_refuses(text):
    with pytest.raises(ConfigError):
        parse_bind(text)


# the broker clients


def test_each_pool_thread_has_its_own_client_and_none_is_shared(broker):
    with dashboard(broker, client_threads=2) as test_client:
        threads = [threading.Thread(target=lambda: [test_client.get("/") for _ in range(5)]) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    assert 1 <= len(broker.clients) <= 2
    assert all(len(client.users) == 1 for client in broker.clients)  # one thread per client, always
    assert all(client.closed for client in broker.clients)  # closed when the dashboard stops...
    assert all(client.closed_by in client.users for client in broker.clients)  # ...by the thread using it
    assert len(broker.calls) == 4 * 5 * 3  # status, dead letters and latest tasks per overview


def test_a_client_whose_broker_did_not_answer_is_replaced(broker):
    with dashboard(broker, client_threads=1) as test_client:
        test_client.get("/api/status")
        broker.down = True
        test_client.get("/api/status")
        broker.down = False
        answer = test_client.get("/api/status")

    first, second = broker.clients
    assert first.closed_by in first.users and answer.status_code == 200
    assert second.users == first.users  # the same thread, a new client


# how values read


def test_times_durations_and_values_read_well():
    from qtasks.dashboard import display

    assert display.clock(0) == "1970-01-01 00:00:00"
    assert display.timestamp("1970-01-01T00:01:00") == 60.0 == display.timestamp("1970-01-01T01:01:00+01:00")
    assert display.timestamp("soon") is None and display.timestamp(True) is None and display.clock(None) == "-"
    assert [display.duration(s) for s in (0.5, 45, 725, 3723, 2 * 86400 + 4 * 3600)] == [
        "0.50 s", "45 s", "12 min 05 s", "1 h 02 min", "2 d 4 h"]
    assert display.priorities({"10": 1, "9": 2, "x": 3}) == [("9", 2), ("10", 1), ("x", 3)]
    assert display.last_line("Traceback...\n  line\nValueError: no\n\n") == "ValueError: no"
    long = display.shown("x" * (display.MAX_SHOWN + 10))
    assert len(long) < display.MAX_SHOWN + 40 and long.endswith("(10 more characters)")
    assert display.shown({"a": [1, 2]}) == '{\n  "a": [\n    1,\n    2\n  ]\n}'
