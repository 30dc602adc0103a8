"""apscheduler executors that tell the job function which scheduled time it runs for.

apscheduler 3.x calls a job as ``func(*args, **kwargs)`` and keeps the scheduled time to
itself; a timer needs it to name the fire (:mod:`qtasks.timers.schedule`). These
executors hand each run time to the job separately, as ``run_time=...``, through a view
of the job, and otherwise leave everything to apscheduler: misfire checks, coalescing,
``max_instances``, events, and its "Running job ... (scheduled at ...)" log lines.

They rely on apscheduler 3.x internals (``_do_submit_job``, ``_instances``), which the
``apscheduler>=3.11,<4`` pin keeps stable; ``tests/test_timers.py`` covers them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.pool import ThreadPoolExecutor

EXECUTOR_ALIAS = "qtasks-timer"
"""The scheduler alias timer jobs run on; jobs users add to ``timer.scheduler`` keep the default."""


class _AtRunTime:
    """The job as seen by one run: ``kwargs`` gains ``run_time``; everything else is the job's."""

    __slots__ = ("job", "kwargs")

    def __init__(self, job: Any, run_time: datetime) -> None:
        self.job = job
        self.kwargs = {**job.kwargs, "run_time": run_time}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.job, name)

    def __str__(self) -> str:
        return str(self.job)


class _OneRunTimeEach:
    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        # submit_job() holds self._lock and counts this call as one running instance; every run
        # time submitted below ends as one instance, so count the extra ones (coalesce=False).
        self._instances[job.id] += len(run_times) - 1  # type: ignore[attr-defined]
        for run_time in run_times:
            super()._do_submit_job(_AtRunTime(job, run_time), [run_time])  # type: ignore[misc]


class ThreadFireExecutor(_OneRunTimeEach, ThreadPoolExecutor):  # type: ignore[misc]
    """For ``BackgroundScheduler``: each fire blocks one pool thread while it enqueues."""


class AsyncFireExecutor(_OneRunTimeEach, AsyncIOExecutor):  # type: ignore[misc]
    """For ``AsyncIOScheduler``: each fire is a coroutine on the scheduler's event loop."""

    async def drain(self, timeout: float) -> None:
        """Let the fires that are enqueueing finish (``shutdown`` would cancel them)."""
        running = [f for f in getattr(self, "_pending_futures", ()) if not f.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)
