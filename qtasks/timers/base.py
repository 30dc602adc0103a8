"""``BaseTimer``: what both timers share — scheduling, naming each fire, logging, stopping.

A timer only enqueues: on each fire of a schedule it submits the task to the app's
broker, and worker processes (``qtasks -A app run``) execute it. The faces differ only in
how a fire waits for the broker and how ``run_forever`` waits to be stopped::

    SyncTimer   BackgroundScheduler, fires block a pool thread   (PendingCall.result)
    AsyncTimer  AsyncIOScheduler, fires are coroutines            (await PendingCall.wait_async)

Each fire's task uuid is derived from the schedule and the scheduled time
(:mod:`qtasks.timers.schedule`); the broker stores a uuid once, so timer processes
running the same schedule on several hosts enqueue each fire once.

While it runs, a timer tells the broker its schedules' next fire times (``qtasks status``
and the dashboard show them): at start, after each fire, and every ``REPORT_EVERY``
seconds; the broker forgets a report not refreshed within ``REPORT_TTL``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid as uuid_module
from abc import ABC, abstractmethod
from concurrent.futures import wait as futures_wait
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator, Optional
from uuid import UUID

from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from qtasks.client.calls import PendingCall
from qtasks.configs import QueueConfig
from qtasks.exc import QTasksError
from qtasks.logs import Logger, configure_process_logging, configured_level
from qtasks.protocol import Ops
from qtasks.timers.executors import EXECUTOR_ALIAS
from qtasks.timers.schedule import Schedule

LOGGER_NAME = "qtasks.timers"
REPORT_EVERY = 10.0
"""Seconds between two reports of the next fire times to the broker."""
REPORT_TTL = 3 * REPORT_EVERY
"""Seconds the broker keeps a report that is not refreshed (the timer stopped or lost its way)."""
REPORT_JOB_ID = "qtasks-timer-report"
STOP_REPORT_WAIT = 1.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class BaseTimer(ABC):
    """Enqueues tasks of ``app`` on apscheduler triggers. Upstream: ``qtasks.timers.base.BaseTimer``."""

    def __init__(self, app: Any, log: Optional[Logger] = None, config: Optional[QueueConfig] = None) -> None:
        self.app = app
        self.config: QueueConfig = config if config is not None else app.config
        self.log = log.with_subname("Timer") if log is not None else Logger(LOGGER_NAME)
        self.tasks: dict[str, Any] = {}
        """task name -> trigger of its latest schedule."""
        self.scheduler = self._make_scheduler()
        self._wake_w: Optional[int] = None

    @abstractmethod
    def _make_scheduler(self) -> Any:
        """The apscheduler scheduler, with a fire executor at ``EXECUTOR_ALIAS``."""

    @abstractmethod
    def _fire(self, schedule: Schedule, run_time: Optional[datetime] = None) -> Any:
        """The job function: enqueue one fire of ``schedule`` (``run_time``: its scheduled time)."""

    @abstractmethod
    def run_forever(self) -> None:
        """Run the schedules until SIGINT (Ctrl+C), SIGTERM or :meth:`stop`; returns after a clean stop."""

    # ------------------------------------------------------------------ scheduling

    def add_task(self, *args: Any, task_name: str, priority: Optional[int] = None,
                 timeout: Optional[float] = None, trigger: BaseTrigger, **kwargs: Any) -> Job:
        """Enqueue ``task_name(*args, **kwargs)`` on every fire of ``trigger``; returns the apscheduler job.

        ``timeout`` is accepted for upstream compatibility and ignored: a timer does not wait
        for results.
        """
        if not isinstance(trigger, BaseTrigger):
            raise TypeError("trigger must be an apscheduler trigger, such as CronTrigger(second='*/5') or "
                            f"IntervalTrigger(seconds=30); got {trigger!r}")
        schedule = self._schedule(task_name, args, kwargs, priority, trigger)
        if timeout is not None:
            self.log.debug("add_task(timeout=%r) ignored for %s: a timer only enqueues", timeout, task_name)
        job = self.scheduler.add_job(self._fire, trigger, args=(schedule,), name=task_name,
                                     executor=EXECUTOR_ALIAS)
        self.tasks[task_name] = trigger
        self.log.debug("scheduled %s on %s (job %s)", task_name, schedule.trigger_text, job.id)
        return job

    def _schedule(self, task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                  priority: Optional[int], trigger: BaseTrigger) -> Schedule:
        # The app checks name, priority and arguments now as it would at each fire, so a mistake
        # fails here rather than at every fire. Keywords are sorted: their order is not part
        # of the schedule's identity.
        envelope = self.app._envelope(task_name, args, dict(sorted(kwargs.items())), priority)
        schedule = Schedule(self.app.name, task_name, tuple(args), dict(kwargs), priority, trigger,
                            envelope.payload)
        if not schedule.shared_across_processes:
            self.log.warning("the trigger of %s prints as %r, which differs per process: other timer "
                             "processes will not recognise its fires, so each would enqueue them "
                             "(give the trigger class a __str__)", task_name, schedule.trigger_text)
        if getattr(trigger, "jitter", None) and not isinstance(trigger, IntervalTrigger):
            self.log.warning("the trigger of %s has jitter: each timer process picks its own fire "
                             "times, so each would enqueue them", task_name)
        if self.app.tasks and self.app._lookup(task_name) is None:
            self.log.warning("no task named %r is registered on app %r; workers will fail it unless "
                             "they know it", task_name, self.app.name)
        return schedule

    # ------------------------------------------------------------------ one fire

    def _submission(self, schedule: Schedule,
                    run_time: Optional[datetime]) -> tuple[UUID, PendingCall[int]]:
        """The fire's uuid, and its submit call; the call resolves to 1 when the broker stored
        the task now, 0 when it already had it (another timer process enqueued this fire)."""
        uuid = schedule.fire_uuid(run_time) if run_time is not None else uuid_module.uuid4()
        call = self.app._add_task_call(schedule.task_name, schedule.args, schedule.kwargs,
                                       schedule.priority, None, uuid=uuid)
        return uuid, PendingCall(call.broker, call.start, int, self.app.broker.connect_timeout)

    def _enqueued(self, schedule: Schedule, run_time: Optional[datetime], uuid: UUID, accepted: int) -> None:
        self.report()
        when = _scheduled(run_time)
        if accepted:
            self.log.info("enqueued %s (scheduled %s) as task %s", schedule.task_name, when, uuid)
        else:
            self.log.info("%s (scheduled %s) was already enqueued as task %s, by another timer process "
                          "(or an earlier run of this one)", schedule.task_name, when, uuid)

    def _not_enqueued(self, schedule: Schedule, run_time: Optional[datetime], uuid: UUID,
                      error: QTasksError) -> None:
        self.report()
        self.log.error("could not enqueue %s (scheduled %s) as task %s: %s; this timer skips this fire",
                       schedule.task_name, _scheduled(run_time), uuid, error)

    # ------------------------------------------------------------------ telling the broker

    def report(self, *, stopping: bool = False) -> None:
        """Send the next fire times to the broker, without waiting (a lost report is sent again
        within ``REPORT_EVERY``); ``stopping``: tell it to forget them, waiting for the answer up
        to ``STOP_REPORT_WAIT`` seconds, since the process ends next."""
        send = getattr(self.app.broker, "ops", None)
        if send is None:  # a user broker that does not speak to a QTasks broker daemon
            return
        jobs = [] if stopping else [
            [job.name[:Ops.MAX_TEXT], str(job.trigger)[:Ops.MAX_TEXT],
             job.next_run_time.timestamp() if job.next_run_time is not None else None]
            for job in self.scheduler.get_jobs() if job.executor == EXECUTOR_ALIAS][:Ops.MAX_TIMER_JOBS]
        source = f"{socket.gethostname()}:{os.getpid()}"[:Ops.MAX_TEXT]
        try:
            future = send("timers", {"app": self.app.name[:Ops.MAX_TEXT], "source": source, "jobs": jobs,
                                     "ttl": 0.0 if stopping else REPORT_TTL})
        except RuntimeError as exc:  # the connection is closed (the process is stopping)
            self.log.debug("could not report the timer's schedules: %s", exc)
            return
        future.add_done_callback(self._reported)
        if stopping:
            futures_wait([future], STOP_REPORT_WAIT)

    def _reported(self, future: Any) -> None:
        error = future.exception()
        if error is not None:
            self.log.debug("the broker did not take the timer's report: %s", error)

    # ------------------------------------------------------------------ running

    def stop(self) -> None:
        """End ``run_forever`` (thread- and signal-safe; nothing happens when it is not running)."""
        wake = self._wake_w
        if wake is None:
            return
        try:
            os.write(wake, b"\0")
        except OSError:  # full (a stop is pending anyway) or closed (it just ended)
            pass

    @contextmanager
    def _serving(self) -> Iterator[int]:
        """Set up a ``run_forever``: logging, SIGINT/SIGTERM handlers; yields the fd that becomes
        readable when the timer is asked to stop (a pipe :meth:`stop` writes to)."""
        quiet_apscheduler = not logging.getLogger().handlers
        configure_process_logging(configured_level(None, self.config.logs_default_level_server))
        if quiet_apscheduler and logging.getLogger("apscheduler").level == logging.NOTSET:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)  # per-fire lines; ours say more
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self._wake_w = wake_w
        restore = self._stop_on_signals()
        self.scheduler.add_job(self.report, IntervalTrigger(seconds=REPORT_EVERY), id=REPORT_JOB_ID,
                               name=REPORT_JOB_ID, replace_existing=True)
        try:
            yield wake_r
        finally:
            self.report(stopping=True)
            restore()
            self._wake_w = None
            os.close(wake_w)
            os.close(wake_r)
            self.log.info("timer for app %r stopped", self.app.name)

    def _stop_on_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # run in a thread: stop() is the way to end it
        previous = {s: signal.signal(s, lambda *_: self.stop()) for s in _STOP_SIGNALS}

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

        return restore

    def _started(self) -> None:
        jobs = [job for job in self.scheduler.get_jobs() if job.executor == EXECUTOR_ALIAS]
        self.log.info("timer for app %r started: %d schedule(s), enqueueing at %s; Ctrl+C or SIGTERM "
                      "stops it", self.app.name, len(jobs), self.app.broker.url)
        for job in jobs:
            upcoming = job.next_run_time.isoformat() if job.next_run_time else "none (paused or ended)"
            self.log.info("  %s on %s, next fire %s", job.name, job.trigger, upcoming)
        self.report()


def _scheduled(run_time: Optional[datetime]) -> str:
    return "now, not deduplicated" if run_time is None else run_time.isoformat()
