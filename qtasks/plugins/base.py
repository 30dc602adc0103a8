"""``BasePlugin``: something that reacts to named triggers of a component (spec §8).

A plugin implements ``trigger(name, **kwargs)`` and returns None or a dict of values
the component may use instead of its own (``args``/``kw`` for the argument triggers,
``result`` for result triggers, ...). ``trigger``, ``start`` and ``stop`` may be plain or
``async`` methods; the engine awaits what needs awaiting. Most plugins keep a
``handlers`` map from trigger name to method, which :meth:`trigger` uses by default.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Optional


class BasePlugin:
    handlers: dict[str, Callable[..., Any]]

    def __init__(self, name: Optional[str] = None, *args: Any, **kwargs: Any) -> None:
        self.name = name or type(self).__name__
        self.plugin_cache: dict[str, Any] = {}
        if not hasattr(self, "handlers"):
            self.handlers = {}

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Handle trigger ``name``: the handler registered for it, if any (may return an awaitable)."""
        handler = self.handlers.get(name)
        return None if handler is None else handler(*args, **kwargs)

    def start(self, *args: Any, **kwargs: Any) -> Any:
        """Called once when serving starts, in every process the plugin's component runs in."""

    def stop(self, *args: Any, **kwargs: Any) -> Any:
        """Called once when serving stops."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def run_to_end(value: Any) -> Any:
    """``value``, or what it gives when awaited, for code without an event loop (the supervisor)."""
    if inspect.iscoroutine(value):
        return asyncio.run(value)
    return value
