"""``BaseStats``: what both stats faces share (the app, their plugins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

from qtasks.plugins.triggers import Plugins, add_plugin

if TYPE_CHECKING:
    from qtasks.app.core import BaseQueueTasks
    from qtasks.plugins.base import BasePlugin


class BaseStats:
    def __init__(self, app: BaseQueueTasks, plugins: Optional[Plugins] = None) -> None:
        self.app = app
        self.plugins: Plugins = plugins if plugins is not None else {}
        """Plugins by trigger name; ``inspect()`` fires ``stats_inspect(stats=self)`` on them."""

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None) -> None:
        """Register ``plugin`` for ``trigger_names`` (None: every trigger)."""
        add_plugin(self.plugins, plugin, trigger_names)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.app.name!r}>"
