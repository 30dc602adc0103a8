"""Starting and stopping the real processes tests need: the broker daemon and worker supervisors.

Every process is started in its own session and stopped by PID (its process group),
also when the test fails; every wait is bounded so a hang fails fast.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0


def read_line_matching(proc: subprocess.Popen[str], pattern: str, timeout: float,
                       stream: str = "stdout") -> re.Match[str]:
    """Read ``proc``'s stdout (or stderr) until a line matches ``pattern`` (bounded by ``timeout``).

    Reads the pipe's fd directly (lines not consumed stay in a buffer kept on ``proc``):
    a buffered reader would hold lines the selector can no longer see.
    """
    pipe = getattr(proc, stream)
    assert pipe is not None
    fd = pipe.fileno()
    pending: list[str] = proc.__dict__.setdefault(f"_qtasks_lines_{stream}", [])
    partial: list[bytes] = proc.__dict__.setdefault(f"_qtasks_partial_{stream}", [])
    deadline = time.monotonic() + timeout
    seen = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            while pending:
                line = pending.pop(0)
                seen.append(line)
                match = re.search(pattern, line)
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r} within {timeout} s; got {seen!r}")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"process exited ({proc.wait()}) before printing {pattern!r}; got {seen!r}")
            *complete, rest = (b"".join(partial) + chunk).split(b"\n")
            partial[:] = [rest]
            pending.extend(line.decode("utf-8", "replace") for line in complete)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
    """Stop ``proc`` and everything in its process group; returns its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its group, if any
    except ProcessLookupError:
        pass
    return proc.wait(timeout)


def popen(args: list[str], env: Optional[dict[str, str]] = None, **kwargs: Any) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("QTASKS_")}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.Popen(args, cwd=ROOT, env=full_env, text=True, start_new_session=True, **kwargs)


@contextmanager
def broker_process(*extra: str, heartbeat: float = 0.1, liveness: int = 3, max_attempts: int = 3,
                   bind: str = "tcp://127.0.0.1:0",
                   **popen_kwargs: Any) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A ``qtasks-broker`` on a free loopback port (or ``bind``); yields (endpoint, process)."""
    proc = popen([sys.executable, "-m", "broker_daemon", "--bind", bind,
                  "--heartbeat-interval", str(heartbeat), "--heartbeat-liveness", str(liveness),
                  "--max-attempts", str(max_attempts), *extra], stdout=subprocess.PIPE, **popen_kwargs)
    try:
        endpoint = read_line_matching(proc, r"listening at (\S+)", 20).group(1)
        yield endpoint, proc
    finally:
        stop_process(proc)


@contextmanager
def worker_process(app_spec: str, url: str, *extra: str, processes: int = 1,
                   env: Optional[dict[str, str]] = None, url_in_env: bool = True,
                   **popen_kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """``qtasks -A app_spec run --processes N --broker url`` as a subprocess (``url_in_env``:
    ``$QTASKS_BROKER_URL`` says the same, so an app built without a URL finds it either way)."""
    base_env = {"QTASKS_BROKER_URL": url} if url_in_env else {}
    proc = popen([sys.executable, "-m", "qtasks", "-A", app_spec, "run", "--processes", str(processes),
                  "--broker", url, *extra], env={**base_env, **(env or {})}, **popen_kwargs)
    try:
        yield proc
    finally:
        stop_process(proc)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Re-check ``condition`` until it is truthy; for states nothing announces (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def worker_pids(app: Any) -> set[int]:
    return {w["pid"] for w in app.broker_stats()["workers"]}


def wait_for_workers(app: Any, count: int, timeout: float = 30.0) -> set[int]:
    def registered() -> set[int] | None:
        pids = worker_pids(app)
        return pids if len(pids) == count else None

    return wait_for(registered, timeout, f"{count} worker process(es) to register")


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (for tests that must restart a server there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (also for processes that are not our children)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_quietly(*pids: int) -> None:
    """SIGKILL processes a test started indirectly (grandchildren), if any are left."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
