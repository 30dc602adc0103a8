"""Firing plugin triggers: the one place every component invokes its plugins (spec §8.3).

A component's ``plugins`` is a dict from trigger name to plugins; ``"Globals"`` holds the
plugins registered without trigger names, which every trigger of the component reaches::

    plugins  {"task_executor_args_replace": [DependsPlugin, StatePlugin], "Globals": [Audit]}

:func:`fire` calls the trigger's plugins, then the global ones, in order. A plugin
answers None or a dict; an answer's ``args``/``kw`` replace what the next plugin gets
(chaining), its ``plugin_cache`` is kept per plugin name and handed back to that plugin
next time, and the answers merge into one dict (later keys win) that the component
reads the documented keys of. A plugin that raises is logged with its traceback, naming
the plugin and the trigger; with ``strict`` (during a task's execution) the error
becomes :class:`~qtasks.exc.TaskPluginTriggerError`, so the task fails instead of running
on half-applied changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Optional

from qtasks.exc import TaskPluginTriggerError
from qtasks.plugins.base import BasePlugin, maybe_await

log = logging.getLogger("qtasks.plugins")

GLOBALS = "Globals"
Plugins = dict[str, list[BasePlugin]]

_CACHE: dict[str, Any] = {}
"""``plugin_cache`` values plugins returned, by plugin name (per process)."""


def add_plugin(plugins: Plugins, plugin: BasePlugin, trigger_names: Optional[Iterable[str]] = None) -> None:
    """Register ``plugin`` for ``trigger_names`` (None: every trigger, under ``"Globals"``)."""
    if not hasattr(plugin, "trigger"):
        raise TypeError(f"a plugin needs a trigger(name, **kwargs) method, got {plugin!r}")
    for name in ([GLOBALS] if trigger_names is None else list(trigger_names)):
        plugins.setdefault(name, []).append(plugin)


def remove_plugin(plugins: Plugins, name: str) -> list[BasePlugin]:
    """Unregister every plugin called ``name`` from every trigger; returns what was removed."""
    removed = []
    for trigger, registered in plugins.items():
        kept = [p for p in registered if p.name != name]
        removed += [p for p in registered if p.name == name and p not in removed]
        plugins[trigger] = kept
    return removed


def all_plugins(*dicts: Plugins) -> list[BasePlugin]:
    """Every plugin of these dicts, once each, in registration order (for start/stop)."""
    seen: dict[int, BasePlugin] = {}
    for plugins in dicts:
        for registered in plugins.values():
            for plugin in registered:
                seen.setdefault(id(plugin), plugin)
    return list(seen.values())


def listened(plugins: Plugins, name: str) -> bool:
    """Whether any plugin would get trigger ``name`` (cheap: check before building its arguments)."""
    return bool(plugins.get(name) or plugins.get(GLOBALS))


def targets(plugins: Plugins, name: str) -> list[BasePlugin]:
    specific = plugins.get(name)
    everywhere = plugins.get(GLOBALS)
    if not everywhere:
        return specific or []
    return [*(specific or ()), *everywhere]


async def fire(plugins: Plugins, name: str, *, strict: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Fire trigger ``name``; the merged answers (empty when no plugin answered)."""
    merged: dict[str, Any] = {}
    for plugin in targets(plugins, name):
        try:
            answer = await maybe_await(plugin.trigger(name, **_with_cache(plugin, kwargs)))
        except Exception as exc:
            _failed(plugin, name, exc, strict)
            continue
        kwargs = _merge(plugin, answer, merged, kwargs)
    return merged


def fire_sync(plugins: Plugins, name: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`fire` for code without an event loop (the supervisor); async plugins run to the end."""
    merged: dict[str, Any] = {}
    for plugin in targets(plugins, name):
        try:
            answer = plugin.trigger(name, **_with_cache(plugin, kwargs))
            if asyncio.iscoroutine(answer):
                answer = asyncio.run(answer)
        except Exception as exc:
            _failed(plugin, name, exc, strict=False)
            continue
        kwargs = _merge(plugin, answer, merged, kwargs)
    return merged


def _with_cache(plugin: BasePlugin, kwargs: dict[str, Any]) -> dict[str, Any]:
    cached = _CACHE.get(plugin.name)
    return kwargs if cached is None else {**kwargs, "plugin_cache": cached}


def _merge(plugin: BasePlugin, answer: Any, merged: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Fold one answer into ``merged``; returns the keyword arguments for the next plugin."""
    if not isinstance(answer, dict):
        return kwargs
    answer = dict(answer)
    if "plugin_cache" in answer:
        _CACHE[plugin.name] = answer.pop("plugin_cache")
    merged.update(answer)
    chained: dict[str, Any] = {key: answer[key] for key in ("args", "kw") if key in answer and key in kwargs}
    return {**kwargs, **chained} if chained else kwargs


def _failed(plugin: BasePlugin, name: str, exc: Exception, strict: bool) -> None:
    log.error("plugin %s failed on trigger %s: %s: %s", plugin.name, name, type(exc).__name__, exc,
              exc_info=exc)
    if strict:
        raise TaskPluginTriggerError(f"plugin {plugin.name!r} failed on trigger {name!r}: "
                                     f"{type(exc).__name__}: {exc}", plugin=plugin.name, trigger=name,
                                     error=exc) from exc
