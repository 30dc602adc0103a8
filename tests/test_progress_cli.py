"""Progress people can see, with real processes: ``qtasks-broker`` restoring a large data directory
and ``qtasks dead retry --all`` draw a bar on stderr (forced with ``--progress``, or by themselves on
a terminal) and end with a line that says how many; small data directories start without one.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from broker_daemon.records import Status, TaskRecord
from broker_daemon.server import RESTORE_BAR_MIN
from broker_daemon.storage.sqlite import SQLiteStorage
from qtasks import QueueTasks
from qtasks.protocol import TaskEnvelope, pack_arguments
from tests.support import broker_process, popen, read_line_matching, stop_process

APP = "bulk"
RESTORED_LINE = r"storing tasks, results and State in .*; (\d+) unfinished task\(s\) taken up again in ([\d.]+) s"


def make_data_dir(directory: Path, live: int, ended: int = 0, dead: int = 0, task: str = "echo") -> None:
    """A data directory as a broker killed mid-work leaves it: ``live`` queued tasks, ``ended``
    finished ones and ``dead`` dead letters of app ``bulk`` (written through the storage API)."""
    storage = SQLiteStorage(directory)
    now = time.time()
    payload = pack_arguments(task, ["restored"], {})

    def record(status: Status) -> TaskRecord:
        made = TaskRecord(TaskEnvelope(uuid.uuid4().bytes, task, APP, 0, now, payload, {}), now)
        made.status, made.dead = status, status == Status.ERROR
        return made

    storage.add_many([record(Status.NEW) for _ in range(live)] + [record(Status.SUCCESS) for _ in range(ended)]
                     + [record(Status.ERROR) for _ in range(dead)])
    storage.close()


def stderr_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> tuple[list[str], re.Match[str]]:
    """The stderr lines of ``proc`` up to the first matching ``pattern``, and that match."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        line = read_line_matching(proc, "", max(0.1, deadline - time.monotonic()), stream="stderr").string
        match = re.search(pattern, line)
        if match:
            return lines, match
        lines.append(line)


def read_terminal(fd: int, pattern: str, timeout: float = 60) -> str:
    """What a process wrote to the terminal ``fd`` (a pty's master side) until ``pattern`` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, seen.decode("utf-8", "replace")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {pattern!r} on the terminal within {timeout} s; got {seen[-2000:]!r}")
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the other side closed: everything was read
                break
    return seen.decode("utf-8", "replace")


@contextmanager
def terminal() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal of 24 x 100 characters: (the master side to read, the slave side to hand a
    process as its stderr)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


# the broker restoring a data directory -------------------------------------------------------------


def test_restoring_thousands_of_tasks_draws_a_bar_when_asked_and_logs_count_and_seconds(tmp_path):
    # Given a data directory with 3,000 unfinished tasks, 500 finished ones and 20 dead letters
    make_data_dir(tmp_path / "data", live=3000, ended=500, dead=20)

    # When a broker starts on it with --progress, its stderr a pipe
    with broker_process("--data-dir", str(tmp_path / "data"), "--progress", stderr=subprocess.PIPE) as (url, proc):
        before, restored = stderr_until(proc, RESTORED_LINE)

        # Then a bar counted the 3,000 unfinished tasks, and the log line says how many and how long
        bar = "".join(before)
        assert "restoring unfinished tasks" in bar and "3000/3000" in bar, bar
        assert int(restored.group(1)) == 3000 and float(restored.group(2)) < 60
        client = QueueTasks(name=APP, broker_url=url)
        stats = client.broker_stats()
        assert stats["queues"][APP] == 3000 and stats["dead_letters"] == 20
        client.close()


def test_a_small_data_dir_starts_without_a_bar_even_on_a_terminal(tmp_path):
    # Given a small data directory (200 tasks), and a broker whose stderr is a terminal
    make_data_dir(tmp_path / "data", live=200, ended=10)
    with terminal() as (master, slave):
        with broker_process("--data-dir", str(tmp_path / "data"), stderr=slave) as (url, proc):
            # When it starts, Then the log line says 200, and no bar was drawn
            shown = read_terminal(master, RESTORED_LINE)
            assert int(re.search(RESTORED_LINE, shown).group(1)) == 200  # type: ignore[union-attr]
            assert "restoring unfinished tasks" not in shown and "it/s" not in shown


def test_a_large_data_dir_draws_the_bar_by_itself_on_a_terminal(tmp_path):
    # Given as many unfinished tasks as make a start-up worth a bar, and a terminal as stderr
    make_data_dir(tmp_path / "data", live=RESTORE_BAR_MIN)
    with terminal() as (master, slave):
        with broker_process("--data-dir", str(tmp_path / "data"), stderr=slave):
            # Then the bar shows, and the log line follows it
            shown = read_terminal(master, RESTORED_LINE)
    assert f"{RESTORE_BAR_MIN}/{RESTORE_BAR_MIN}" in shown and "restoring unfinished tasks" in shown
    assert int(re.search(RESTORED_LINE, shown).group(1)) == RESTORE_BAR_MIN  # type: ignore[union-attr]


def test_without_a_terminal_or_with_no_progress_there_is_only_the_log_line(tmp_path):
    make_data_dir(tmp_path / "data", live=1500)
    for flags in ([], ["--no-progress"]):
        with broker_process("--data-dir", str(tmp_path / "data"), *flags, stderr=subprocess.PIPE) as (_, proc):
            before, restored = stderr_until(proc, RESTORED_LINE)
            assert int(restored.group(1)) == 1500
            assert "restoring unfinished tasks" not in "".join(before), flags


# dead retry --all --------------------------------------------------------------------------------------


def qtasks(url: str, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = popen([sys.executable, "-m", "qtasks", "--broker", url, *args], stdout=subprocess.PIPE, **kwargs)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_dead_retry_all_draws_a_bar_over_the_dead_letters_and_ends_with_a_summary(tmp_path):
    # Given a broker holding 2,500 dead letters (more than one request's worth)
    make_data_dir(tmp_path / "data", live=0, dead=2500)
    with broker_process("--data-dir", str(tmp_path / "data"), stderr=subprocess.PIPE) as (url, broker):
        # When they are all retried with a bar asked for
        result = qtasks(url, "dead", "retry", "--all", "--progress", stderr=subprocess.PIPE)

        # Then the bar counted to 2,500, in steps of one request each, and stdout has the summary only
        assert result.returncode == 0, result.stderr
        assert result.stdout == "retried 2500 dead letter(s)\n"
        assert "retrying dead letters" in result.stderr and "2500/2500" in result.stderr
        steps = [int(stderr_until(broker, r"retried (\d+) dead letter\(s\)")[1].group(1)) for _ in range(3)]
        assert steps == [1000, 1000, 500]
        client = QueueTasks(name=APP, broker_url=url)
        stats = client.broker_stats()
        assert stats["dead_letters"] == 0 and stats["queues"][APP] == 2500
        client.close()


def test_dead_retry_all_draws_the_bar_by_itself_on_a_terminal_only(tmp_path):
    make_data_dir(tmp_path / "data", live=0, dead=200, task="piped")
    make_data_dir(tmp_path / "data", live=0, dead=300, task="shown")
    with broker_process("--data-dir", str(tmp_path / "data")) as (url, _):
        # On a pipe: no bar, no per-batch lines, just the summary
        piped = qtasks(url, "dead", "retry", "--all", "--task", "piped", stderr=subprocess.PIPE)
        assert piped.returncode == 0 and piped.stdout == "retried 200 dead letter(s)\n" and piped.stderr == ""
        # On a terminal: the bar
        with terminal() as (master, slave):
            on_terminal = qtasks(url, "dead", "retry", "--all", "--task", "shown", stderr=slave)
            shown = read_terminal(master, r"300/300")
        assert on_terminal.returncode == 0 and on_terminal.stdout == "retried 300 dead letter(s)\n"
        assert "retrying dead letters" in shown
