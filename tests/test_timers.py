"""Timers: ``SyncTimer`` / ``AsyncTimer`` enqueue tasks on apscheduler triggers, each fire once.

The process tests run the real pieces: a broker daemon, a worker process serving
``tests.apps.timer_sync:app`` and timer processes (``python -m tests.apps.timer_sync`` /
``timer_async``) whose ``stamp(path)`` task appends its own uuid to ``path``. A timer logs
each fire as "enqueued stamp (scheduled T) as task U", or "stamp (scheduled T) was already
enqueued as task U, by another timer process".
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import subprocess
import sys
import uuid as uuid_module
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

import qtasks.asyncio
from qtasks import QueueTasks
from qtasks.exc import UnserializableArgumentError
from qtasks.timers import AsyncTimer, SyncTimer
from qtasks.timers.base import BaseTimer
from qtasks.timers.executors import EXECUTOR_ALIAS
from tests.support import (
    free_port,
    popen,
    read_line_matching,
    stop_process,
    wait_for,
    wait_for_workers,
    worker_process,
)

FRESH = re.compile(r"enqueued stamp \(scheduled (?P<at>\S+)\) as task (?P<uuid>[0-9a-f-]{36})$")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KNOWN = re.compile(r"stamp \(scheduled (?P<at>\S+)\) was already enqueued as task (?P<uuid>[0-9a-f-]{36}),")


@dataclass(frozen=True)
class Fire:
    at: datetime
    uuid: str
    fresh: bool


def fires_in(log: Path) -> list[Fire]:
    found = []
    for line in log.read_text().splitlines():
        for pattern, fresh in ((FRESH, True), (KNOWN, False)):
            match = pattern.search(line)
            if match:
                found.append(Fire(datetime.fromisoformat(match["at"]), match["uuid"], fresh))
    return found


def stamps_in(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@contextmanager
def timer_process(flavour: str, url: str, path: Path, log: Path,
                  trigger: str = "interval:0.3") -> Iterator[subprocess.Popen[str]]:
    """``python -m tests.apps.timer_<flavour> --trigger ... path``, its stderr going to ``log``."""
    with open(log, "w") as sink:
        proc = popen([sys.executable, "-m", f"tests.apps.timer_{flavour}", "--trigger", trigger, str(path)],
                     env={"QTASKS_BROKER_URL": url}, stderr=sink)
    try:
        wait_for(lambda: "started: 1 schedule(s)" in log.read_text() or proc.poll() is not None, 20,
                 f"the {flavour} timer to start")
        assert proc.poll() is None, log.read_text()
        yield proc
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def client(broker_url: str) -> Iterator[QueueTasks]:
    """A client of the module's broker, with one worker process serving the timer test app."""
    with worker_process("tests.apps.timer_sync:app", broker_url):
        app = QueueTasks(name="tests-timers", broker_url=broker_url)
        wait_for_workers(app, 1)
        yield app
        app.close()


# ---------------------------------------------------------------------------- real processes


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_timer_process_enqueues_every_fire_and_a_worker_runs_each_once(client, broker_url, tmp_path, flavour):
    stamps, log = tmp_path / "stamps.txt", tmp_path / "timer.log"
    # Given a timer process enqueueing stamp(path) every 0.3 s, and a worker process
    with timer_process(flavour, broker_url, stamps, log) as timer:
        # When it has run for a few fires
        wait_for(lambda: len(stamps_in(stamps)) >= 3, 15, "three fires to run")
        # Then SIGTERM stops it cleanly, even between fires
        timer.send_signal(signal.SIGTERM)
        assert timer.wait(10) == 0
    fires = fires_in(log)
    assert "timer for app 'tests-timers' stopped" in log.read_text()
    # and it logged each fire's uuid: a new task each time, 0.3 s apart, none seen before
    assert len(fires) >= 3 and all(f.fresh for f in fires)
    assert len({f.uuid for f in fires}) == len(fires)
    assert all(uuid_module.UUID(f.uuid).version == 5 for f in fires)
    gaps = [(b.at - a.at) / timedelta(milliseconds=300) for a, b in zip(fires, fires[1:], strict=False)]
    assert all(gap >= 1 and gap == round(gap) for gap in gaps), gaps  # a fire later than 1 s is skipped
    # and the worker ran every enqueued task exactly once
    wait_for(lambda: len(stamps_in(stamps)) == len(fires), 10, "every enqueued fire to run")
    assert sorted(stamps_in(stamps)) == sorted(f.uuid for f in fires)


@pytest.mark.parametrize("trigger, period", [("interval:0.3", 0.3), ("cron:*", 1.0)])
def test_two_timer_processes_with_one_schedule_enqueue_each_fire_once(client, broker_url, tmp_path,
                                                                     trigger, period):
    stamps, log_a, log_b = tmp_path / "stamps.txt", tmp_path / "a.log", tmp_path / "b.log"
    resubmitted_before = client.broker_stats()["totals"].get("resubmitted", 0)
    # Given a sync timer running a schedule, and a while later an async one with the same schedule
    # (two hosts, for availability; an interval trigger then fires at another phase in each)
    with timer_process("sync", broker_url, stamps, log_a, trigger):
        wait_for(lambda: fires_in(log_a), 15, "the first timer's first fire")
        with timer_process("async", broker_url, stamps, log_b, trigger):
            # When both have submitted the same fire a few times
            wait_for(lambda: sum(not f.fresh for f in fires_in(log_a) + fires_in(log_b)) >= 2, 15,
                     "two fires that both timers submitted")
    fires = fires_in(log_a) + fires_in(log_b)
    # Then each fire (an instant for cron, a slot of the interval for interval triggers) has one uuid
    slot = timedelta(seconds=period)
    uuid_of: dict[int, set[str]] = {}
    for fire in fires:
        uuid_of.setdefault((fire.at - EPOCH) // slot, set()).add(fire.uuid)
    assert all(len(uuids) == 1 for uuids in uuid_of.values()), uuid_of
    assert len({f.uuid for f in fires}) == len(uuid_of)
    # and exactly one timer enqueued it; the other's submit was the one the broker ignored
    fresh = [f.uuid for f in fires if f.fresh]
    assert sorted(fresh) == sorted({f.uuid for f in fires})
    known = [f for f in fires if not f.fresh]
    assert len(known) >= 2
    assert client.broker_stats()["totals"].get("resubmitted", 0) - resubmitted_before == len(known)
    # and the worker ran each fire once
    wait_for(lambda: len(stamps_in(stamps)) == len(fresh), 10, "every fire to run")
    assert sorted(stamps_in(stamps)) == sorted(fresh)


def test_run_forever_stops_cleanly_on_sigterm_and_ctrl_c(tmp_path):
    # Given timer processes of both flavours, each waiting for a fire an hour away (no broker needed)
    url = f"tcp://127.0.0.1:{free_port()}"
    cases = [(flavour, signum) for flavour in ("sync", "async") for signum in (signal.SIGTERM, signal.SIGINT)]
    procs = [popen([sys.executable, "-m", f"tests.apps.timer_{flavour}", "--trigger", "never",
                    str(tmp_path / "stamps.txt")], env={"QTASKS_BROKER_URL": url}, stderr=subprocess.PIPE)
             for flavour, _ in cases]
    try:
        for proc, (_, signum) in zip(procs, cases, strict=True):
            read_line_matching(proc, r"started: 1 schedule\(s\)", 20, "stderr")
            # When one gets SIGTERM or SIGINT (Ctrl+C)
            proc.send_signal(signum)
        for proc, case in zip(procs, cases, strict=True):
            # Then its run_forever() returns after shutting the scheduler down, and it exits 0
            read_line_matching(proc, r"timer for app 'tests-timers' stopped", 10, "stderr")
            assert proc.wait(10) == 0, case
    finally:
        for proc in procs:
            stop_process(proc)


# ---------------------------------------------------------------------------- in process


@pytest.mark.parametrize("timer_class, app_class, scheduler_class", [
    (SyncTimer, QueueTasks, BackgroundScheduler),
    (AsyncTimer, qtasks.asyncio.QueueTasks, AsyncIOScheduler),
])
def test_add_task_returns_the_job_and_records_the_trigger(timer_class, app_class, scheduler_class):
    app = app_class(name="tests-timers-unit")
    timer = timer_class(app)
    trigger = CronTrigger(second="*/5")
    job = timer.add_task(1, 2, task_name="add", trigger=trigger, priority=3, timeout=10, flag=True)
    assert isinstance(timer, BaseTimer) and isinstance(timer.scheduler, scheduler_class)
    assert timer.app is app and timer.config is app.config
    assert isinstance(job, Job) and job.name == "add" and job.executor == EXECUTOR_ALIAS
    assert timer.tasks == {"add": trigger}
    [schedule] = job.args
    assert (schedule.args, schedule.kwargs, schedule.priority) == ((1, 2), {"flag": True}, 3)


def test_add_task_needs_a_task_name_and_a_trigger():
    timer = SyncTimer(QueueTasks(name="tests-timers-unit"))
    with pytest.raises(TypeError, match="keyword-only argument: 'trigger'"):
        timer.add_task("report", task_name="report")
    with pytest.raises(TypeError, match="keyword-only argument: 'task_name'"):
        timer.add_task("report", trigger=CronTrigger(second="*"))
    with pytest.raises(TypeError, match=r"apscheduler trigger, such as CronTrigger.*got 'cron'"):
        timer.add_task(task_name="report", trigger="cron")
    with pytest.raises(TypeError, match="apscheduler trigger"):
        timer.add_task(task_name="report", trigger=None)
    with pytest.raises(ValueError, match="task name must be a non-empty string"):
        timer.add_task(task_name="", trigger=CronTrigger(second="*"))
    with pytest.raises(TypeError, match="priority must be an int"):
        timer.add_task(task_name="report", priority="high", trigger=CronTrigger(second="*"))
    with pytest.raises(UnserializableArgumentError):
        timer.add_task(object(), task_name="report", trigger=CronTrigger(second="*"))
    assert timer.tasks == {} and timer.scheduler.get_jobs() == []


def test_timer_processes_name_a_fire_alike_and_different_fires_differently():
    when = datetime(2030, 1, 1, 12, 0, 5, tzinfo=timezone.utc)

    def fire_uuid(timer, *args, trigger=None, **kwargs):
        job = timer.add_task(*args, task_name="report", trigger=trigger or CronTrigger(second="*/5"), **kwargs)
        return job.args[0].fire_uuid(when)

    # Two timers (two processes' worth: separate apps of one name, either flavour) agree
    sync_timer = SyncTimer(QueueTasks(name="tests-timers-unit"))
    async_timer = AsyncTimer(qtasks.asyncio.QueueTasks(name="tests-timers-unit"))
    same = fire_uuid(sync_timer, 1, a=1, b=2)
    assert fire_uuid(async_timer, 1, b=2, a=1) == same  # keyword order is not part of a schedule
    assert fire_uuid(async_timer, 1, a=1, b=2, priority=7) == same  # nor is the priority
    # while another app, task argument or trigger is another schedule
    assert fire_uuid(SyncTimer(QueueTasks(name="other")), 1, a=1, b=2) != same
    assert fire_uuid(sync_timer, 2, a=1, b=2) != same
    assert fire_uuid(sync_timer, 1, a=1, b=2, trigger=CronTrigger(second="*/10")) != same
    # and the scheduled time, not the clock, names the fire: another time is another fire
    [schedule] = sync_timer.scheduler.get_jobs()[0].args
    assert schedule.fire_uuid(when.astimezone(timezone(timedelta(hours=3)))) == same
    assert schedule.fire_uuid(when + timedelta(seconds=5)) != same
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.fire_uuid(when.replace(tzinfo=None))


def test_interval_fires_are_named_by_their_slot_so_timers_started_apart_agree():
    app = QueueTasks(name="tests-timers-unit")
    # Two processes that started 0.3 s apart: without start_date, their fires are 0.3 s apart too
    early = SyncTimer(app).add_task(task_name="tick", trigger=IntervalTrigger(seconds=1)).args[0]
    late = SyncTimer(app).add_task(task_name="tick", trigger=IntervalTrigger(seconds=1)).args[0]
    base = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    for n in range(5):
        first = base + timedelta(seconds=n, milliseconds=100)
        assert early.fire_uuid(first) == late.fire_uuid(first + timedelta(milliseconds=300))
    slots = {early.fire_uuid(base + timedelta(seconds=n, milliseconds=100)) for n in range(5)}
    assert len(slots) == 5


def test_each_fire_is_enqueued_under_its_scheduled_time(app, tmp_path):
    # Given a sync timer on the in-process stack, its scheduler started by the program itself
    timer = SyncTimer(app)
    at = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    job = timer.add_task(str(tmp_path / "ran.txt"), "fired", task_name="record", trigger=DateTrigger(at))
    [schedule] = job.args
    timer.scheduler.start()
    try:
        # When the date comes, Then the task runs under the uuid named by its scheduled time
        task = wait_for(lambda: app.get(schedule.fire_uuid(at)), 10, "the fire to be enqueued")
        assert task.wait_result(10).returning == "fired"
    finally:
        timer.scheduler.shutdown(wait=True)


def test_missed_run_times_each_get_their_own_fire_when_not_coalesced(app, tmp_path):
    # Given a job handed two run times at once (as apscheduler does after a pause, with coalesce=False)
    timer = SyncTimer(app)
    job = timer.add_task(str(tmp_path / "ran.txt"), "late", task_name="record",
                         trigger=DateTrigger(datetime.now(timezone.utc) + timedelta(hours=1)))
    timer.scheduler.start(paused=True)
    try:
        executor = timer.scheduler._lookup_executor(EXECUTOR_ALIAS)
        now = datetime.now(timezone.utc)
        run_times = [now - timedelta(milliseconds=200), now - timedelta(milliseconds=100)]
        executor.submit_job(job, run_times)
        # Then each run time is enqueued under its own uuid, and the executor's count of
        # running instances ends at zero (so max_instances keeps working)
        [schedule] = job.args
        for run_time in run_times:
            task = wait_for(lambda rt=run_time: app.get(schedule.fire_uuid(rt)), 10, "each fire")
            assert task.wait_result(10).returning == "late"
        wait_for(lambda: not executor._instances, 10, "the fires to be counted as finished")
    finally:
        timer.scheduler.shutdown(wait=True)


def test_the_async_timer_enqueues_from_an_event_loop(app, tmp_path):
    async def main():
        # Given an async timer whose scheduler a running program starts in its own loop
        timer = AsyncTimer(app)
        at = datetime.now(timezone.utc) + timedelta(seconds=0.3)
        job = timer.add_task(str(tmp_path / "ran.txt"), "async fire", task_name="record", trigger=DateTrigger(at))
        timer.scheduler.start()
        try:
            uuid = job.args[0].fire_uuid(at)
            task = await asyncio.to_thread(wait_for, lambda: app.get(uuid), 10, "the fire to be enqueued")
            return await task.wait_result_async(10)
        finally:
            timer.scheduler.shutdown(wait=False)

    assert asyncio.run(main()).returning == "async fire"


def test_schedules_other_processes_cannot_recognise_are_warned_about(caplog):
    class Every(IntervalTrigger):
        __str__ = object.__repr__  # "<...Every object at 0x...>": differs per process

    timer = SyncTimer(QueueTasks(name="tests-timers-unit"))
    with caplog.at_level(logging.WARNING, logger="qtasks.timers"):
        timer.add_task(task_name="tick", trigger=IntervalTrigger(seconds=1, jitter=0.5))  # slots still agree
        assert caplog.text == ""
        timer.add_task(task_name="tick", trigger=CronTrigger(second="*", jitter=2))
        assert "has jitter: each timer process picks its own fire times" in caplog.text
        timer.add_task(task_name="tick", trigger=Every(seconds=1))
        assert "differs per process" in caplog.text
