"""``SyncPluginMixin`` / ``AsyncPluginMixin``: plugins for classes of the user's own (upstream's path).

A class with a ``plugins`` dict gets ``add_plugin`` and ``_plugin_trigger``, which fire a
trigger the way every component does (:mod:`qtasks.plugins.triggers`). With
``return_last=True`` the answers come merged into one dict; otherwise as a list (the merged
answer, or nothing when no plugin answered).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from qtasks.plugins.base import BasePlugin
from qtasks.plugins.triggers import Plugins, add_plugin, fire, fire_sync


class _PluginHolder:
    plugins: Plugins

    def add_plugin(self, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None) -> None:
        if not isinstance(getattr(self, "plugins", None), dict):
            self.plugins = {}
        add_plugin(self.plugins, plugin, trigger_names)


def _shaped(merged: dict[str, Any], return_last: Optional[bool]) -> Union[dict[str, Any], list[dict[str, Any]]]:
    if return_last:
        return merged
    return [merged] if merged else []


class SyncPluginMixin(_PluginHolder):
    def _plugin_trigger(self, name: str, *args: Any, return_last: Optional[bool] = None, safe: bool = True,
                        continue_on_fail: bool = False, **kwargs: Any) -> Any:
        return _shaped(fire_sync(getattr(self, "plugins", {}), name, **kwargs), return_last)


class AsyncPluginMixin(_PluginHolder):
    async def _plugin_trigger(self, name: str, *args: Any, return_last: Optional[bool] = None, safe: bool = True,
                              continue_on_fail: bool = False, **kwargs: Any) -> Any:
        return _shaped(await fire(getattr(self, "plugins", {}), name, **kwargs), return_last)


__all__ = ["AsyncPluginMixin", "SyncPluginMixin"]
