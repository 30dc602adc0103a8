"""Timers: enqueue tasks on apscheduler 3.x triggers (cron, interval, date, ...).

``SyncTimer`` / ``AsyncTimer`` (upstream's import paths), both built on
:class:`qtasks.timers.base.BaseTimer`. Timer processes running the same schedule (on two
hosts, for availability) enqueue each fire once: see :mod:`qtasks.timers.schedule`.
"""

from qtasks.timers.async_timer import AsyncTimer
from qtasks.timers.sync_timer import SyncTimer

__all__ = ["AsyncTimer", "SyncTimer"]
