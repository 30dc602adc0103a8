"""``Component``: what every replaceable part of an app has (spec §9).

Broker, worker, storage, global config, starter and task executor all carry a name, a
log, the app's config and events, and their own plugins (``add_plugin``). The app hands
its config and events to its components when they are built or served
(``update_config``), so one place configures everything.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from qtasks.configs.config import QueueConfig
from qtasks.logs import Logger
from qtasks.plugins.base import BasePlugin
from qtasks.plugins.triggers import Plugins, add_plugin, all_plugins, fire, fire_sync


class Component:
    def __init__(self, name: Optional[str] = None, log: Optional[Logger] = None,
                 config: Optional[QueueConfig] = None, events: Any = None) -> None:
        self.name = name or "QueueTasks"
        self.config = config if config is not None else QueueConfig()
        self.log = (log.with_subname(type(self).__name__) if log is not None
                    else Logger(self.name, type(self).__name__))
        self.events = events
        self.plugins: Plugins = {}
        self.init_plugins()
        self.builtin_plugins: list[BasePlugin] = all_plugins(self.plugins)
        """The plugins the component installed itself (a test case's ``plugins=False`` keeps them)."""

    def init_plugins(self) -> None:
        """Install the component's built-in plugins (none by default)."""

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None) -> None:
        """Register ``plugin`` for ``trigger_names`` of this component (None: every trigger)."""
        add_plugin(self.plugins, plugin, trigger_names)

    def update_config(self, config: QueueConfig) -> None:
        self.config = config

    async def _trigger(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return await fire(self.plugins, name, **kwargs) if self.plugins else {}

    def _trigger_sync(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return fire_sync(self.plugins, name, **kwargs) if self.plugins else {}
