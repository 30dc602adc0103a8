"""A timer process for the timer tests: ``python -m tests.apps.timer_sync --trigger interval:0.5 PATH``.

``--trigger``: ``interval:SECONDS``, ``cron:SECOND_FIELD`` (e.g. ``cron:*``) or ``never``
(a date trigger an hour away, for tests of starting and stopping).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from qtasks.timers import AsyncTimer, SyncTimer


def trigger_of(text: str) -> Any:
    kind, _, value = text.partition(":")
    if kind == "interval":
        return IntervalTrigger(seconds=float(value))
    if kind == "cron":
        return CronTrigger(second=value)
    if kind == "never":
        return DateTrigger(datetime.now(timezone.utc) + timedelta(hours=1))
    raise SystemExit(f"unknown trigger {text!r}")


def main(app: Any, flavour: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trigger", default="interval:0.5")
    parser.add_argument("path")
    options = parser.parse_args()
    timer = SyncTimer(app) if flavour == "sync" else AsyncTimer(app)
    timer.add_task(options.path, task_name="stamp", trigger=trigger_of(options.trigger))
    timer.run_forever()
