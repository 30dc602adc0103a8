"""``AsyncStats``: ``await stats.inspect()``, for plugins that await."""

from __future__ import annotations

from qtasks.plugins.triggers import fire
from qtasks.stats.base import BaseStats
from qtasks.stats.inspect.inspect import InspectStats


class AsyncStats(BaseStats):
    async def inspect(self) -> InspectStats:
        """Fire ``stats_inspect`` on this object's plugins; the app's description."""
        await fire(self.plugins, "stats_inspect", stats=self)
        return InspectStats(self.app)
