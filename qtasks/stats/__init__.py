"""Describing an app from the inside: its settings and registered tasks (spec §13.1).

::

    stats = SyncStats(app)                    # AsyncStats(app): ``await stats.inspect()``
    print(stats.inspect().tasks())            # text blocks, one per task
    stats.inspect().task("add", json=True)    # a JSON string

The sync and async classes differ only in how ``inspect()`` fires the ``stats_inspect``
plugin trigger; what they describe is :class:`~qtasks.stats.inspect.inspect.InspectStats`.
"""

from qtasks.stats.async_stats import AsyncStats
from qtasks.stats.base import BaseStats
from qtasks.stats.inspect.inspect import InspectStats
from qtasks.stats.sync_stats import SyncStats

__all__ = ["AsyncStats", "BaseStats", "InspectStats", "SyncStats"]
