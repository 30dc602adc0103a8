"""``BaseEvents``: handlers by event name, and firing them.

A handler that raises is logged, never fatal. ``fire_async`` (the worker's event loop)
awaits coroutine handlers; ``fire_sync`` (the supervisor, which has no loop) runs them
to completion on a short-lived loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Optional

from qtasks.events.events import OnEvents

log = logging.getLogger("qtasks.events")


class BaseEvents:
    def __init__(self, on: Optional[OnEvents] = None) -> None:
        self._on = on or OnEvents()

    @property
    def on(self) -> OnEvents:
        return self._on

    def has_handlers(self, event: str) -> bool:
        return bool(self._on.handlers.get(event))

    async def fire_async(self, event: str, *args: Any, **kwargs: Any) -> None:
        for handler in self._on.handlers.get(event, ()):
            try:
                outcome = handler.func(*args, **kwargs)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("the %s handler %s failed; carrying on", event, handler.func.__qualname__)

    def fire_sync(self, event: str, *args: Any, **kwargs: Any) -> None:
        for handler in self._on.handlers.get(event, ()):
            try:
                outcome = handler.func(*args, **kwargs)
                if inspect.isawaitable(outcome):
                    asyncio.run(_awaited(outcome))
            except Exception:
                log.exception("the %s handler %s failed; carrying on", event, handler.func.__qualname__)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
