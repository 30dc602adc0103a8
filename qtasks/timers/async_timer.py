"""``AsyncTimer``: the timer for asyncio programs (``AsyncIOScheduler``; fires are coroutines)."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Any, Optional

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from qtasks.exc import QTasksError
from qtasks.timers.base import BaseTimer
from qtasks.timers.executors import EXECUTOR_ALIAS, AsyncFireExecutor
from qtasks.timers.schedule import Schedule

DRAIN_MARGIN = 1.0
"""Seconds past the broker connect timeout that stopping waits for fires still enqueueing."""


class AsyncTimer(BaseTimer):
    """Enqueues tasks on apscheduler triggers from an event loop::

        timer = AsyncTimer(app)
        timer.add_task("daily", task_name="report", trigger=CronTrigger(hour=6))
        timer.run_forever()   # plain def: runs its own event loop

    In a program that already runs a loop, start ``timer.scheduler`` there instead.
    """

    def _make_scheduler(self) -> Any:
        self._executor = AsyncFireExecutor()
        return AsyncIOScheduler(executors={EXECUTOR_ALIAS: self._executor})

    async def _fire(self, schedule: Schedule, run_time: Optional[datetime] = None) -> None:
        uuid, call = self._submission(schedule, run_time)
        try:
            accepted = await call.wait_async()
        except QTasksError as error:
            self._not_enqueued(schedule, run_time, uuid, error)
            return
        self._enqueued(schedule, run_time, uuid, accepted)

    def run_forever(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        with self._serving() as stop_requested:
            def on_stop() -> None:
                os.read(stop_requested, 1)
                stopped.set()

            loop.add_reader(stop_requested, on_stop)
            self.scheduler.start()
            try:
                self._started()
                await stopped.wait()
            finally:
                loop.remove_reader(stop_requested)
                self.scheduler.pause()
                await self._executor.drain(self.app.broker.connect_timeout + DRAIN_MARGIN)
                self.scheduler.shutdown(wait=False)
