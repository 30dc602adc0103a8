"""``SyncTimer``: the timer for blocking programs (``BackgroundScheduler``; fires run in pool threads)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Optional

from apscheduler.schedulers.background import BackgroundScheduler

from qtasks.exc import QTasksError
from qtasks.timers.base import BaseTimer
from qtasks.timers.executors import EXECUTOR_ALIAS, ThreadFireExecutor
from qtasks.timers.schedule import Schedule


class SyncTimer(BaseTimer):
    """Enqueues tasks on apscheduler triggers::

        timer = SyncTimer(app)
        timer.add_task("daily", task_name="report", trigger=CronTrigger(hour=6))
        timer.run_forever()
    """

    def _make_scheduler(self) -> Any:
        return BackgroundScheduler(executors={EXECUTOR_ALIAS: ThreadFireExecutor()})

    def _fire(self, schedule: Schedule, run_time: Optional[datetime] = None) -> None:
        uuid, call = self._submission(schedule, run_time)
        try:
            accepted = call.result()
        except QTasksError as error:
            self._not_enqueued(schedule, run_time, uuid, error)
            return
        self._enqueued(schedule, run_time, uuid, accepted)

    def run_forever(self) -> None:
        with self._serving() as stop_requested:
            self.scheduler.start()
            try:
                self._started()
                os.read(stop_requested, 1)  # blocks until stop(): a signal handler or another thread
            finally:
                self.scheduler.shutdown(wait=True)  # lets fires that are enqueueing finish
