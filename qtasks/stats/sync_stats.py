"""``SyncStats``: ``stats.inspect()`` for code without an event loop (and the CLI)."""

from __future__ import annotations

from qtasks.plugins.triggers import fire_sync
from qtasks.stats.base import BaseStats
from qtasks.stats.inspect.inspect import InspectStats


class SyncStats(BaseStats):
    def inspect(self) -> InspectStats:
        """Fire ``stats_inspect`` on this object's plugins; the app's description."""
        fire_sync(self.plugins, "stats_inspect", stats=self)
        return InspectStats(self.app)
