"""``qtasks dashboard`` and ``qtasks web`` as processes, over real HTTP on loopback.

No browser here (``test_dashboard_browser`` has one): these check the command's rules, the
refusal of an open address without a password, the password over the wire, and a clean stop.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlsplit

from tests.support import ROOT, broker_process, free_port, popen, read_line_matching, stop_process


@contextmanager
def dashboard(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m qtasks ARGS`` that serves a dashboard; yields (its URL, the process)."""
    proc = popen([sys.executable, "-m", "qtasks", *args], env=env, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    try:
        yield read_line_matching(proc, r"serving (http://\S+)", 30).group(1), proc
    finally:
        stop_process(proc)


def get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def dead_broker_url() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def popen_env() -> dict[str, str]:
    """The environment ``popen`` gives, for ``subprocess.run``: no QTASKS_* variables, this checkout first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTASKS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_an_open_address_without_a_password_is_refused_before_listening():
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "qtasks", "dashboard", "--bind", "0.0.0.0:0"],
                            capture_output=True, text=True, timeout=60,
                            env={**popen_env(), "QTASKS_DASHBOARD_PASSWORD": ""})

    assert result.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in result.stderr
    assert "QTASKS_DASHBOARD_PASSWORD" in result.stderr and "Traceback" not in result.stderr
    assert "serving" not in result.stdout
    assert time.monotonic() - started < 30


def test_web_is_the_dashboard_on_the_port_option_and_says_when_the_broker_is_down():
    url = dead_broker_url()
    port = free_port()
    with dashboard("--broker", url, "--timeout", "0.5", "--port", str(port), "web") as (base, _):
        assert base == f"http://127.0.0.1:{port}/"
        status, _, page = get(base, "/")
        api_status, _, api = get(base, "/api/status")

    assert status == 503 and "no QTasks broker answered" in page and url in page
    assert api_status == 503 and url in json.loads(api)["error"]


def test_the_password_from_the_environment_guards_every_page():
    with broker_process() as (url, _), dashboard("--broker", url, "dashboard", "--bind", "127.0.0.1:0",
                                                 env={"QTASKS_DASHBOARD_PASSWORD": "from-env"}) as (base, proc):
        status, headers, _ = get(base, "/")
        api_status, _, _ = get(base, "/api/status")
        login_status, _, login = get(base, "/login")
        kept_alive_ms = kept_alive_times(base, "/static/dashboard.css", 15)

    assert status == 303 and headers["location"] == "/login?next=/"
    assert api_status == 401
    assert login_status == 200 and 'type="password"' in login
    # a response's head and body leave at once (TCP_NODELAY), not after the browser's delayed ACK (~40 ms)
    assert statistics.median(kept_alive_ms) < 35, kept_alive_ms


def kept_alive_times(base: str, path: str, count: int) -> list[float]:
    """Milliseconds of ``count`` GETs over one kept-alive connection."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return times


def test_with_the_app_the_dashboard_uses_its_broker_and_stops_cleanly_on_sigterm():
    with broker_process() as (url, _):
        with dashboard("-A", "tests.apps.dashboard:app", "dashboard", "--bind", "127.0.0.1:0",
                       env={"QTASKS_BROKER_URL": url}) as (base, proc):
            status, _, page = get(base, "/")
            rebound, _, _ = get(base, "/", headers={"host": "attacker.example"})
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            _, stderr = proc.communicate(timeout=10)

    assert status == 200 and "dashboard-demo" in page and url in page
    assert rebound == 400  # a loopback dashboard answers loopback host names only
    assert code == 0 and "Traceback" not in stderr


def test_a_taken_port_is_a_clear_error():
    with dashboard("--broker", dead_broker_url(), "dashboard", "--bind", "127.0.0.1:0") as (base, _):
        port = urlsplit(base).port
        result = subprocess.run([sys.executable, "-m", "qtasks", "--broker", dead_broker_url(), "dashboard",
                                 "--bind", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
                                env=popen_env())

    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
