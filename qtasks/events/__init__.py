"""Events: ``@app.events.on.starting()`` and the rest (see :class:`OnEvents`)."""

from __future__ import annotations

from typing import Any

from qtasks.events.base import BaseEvents
from qtasks.events.events import OnEvents


class AsyncEvents(BaseEvents):
    async def fire(self, event: str, *args: Any, **kwargs: Any) -> None:
        await self.fire_async(event, *args, **kwargs)


class SyncEvents(BaseEvents):
    def fire(self, event: str, *args: Any, **kwargs: Any) -> None:
        self.fire_sync(event, *args, **kwargs)


__all__ = ["AsyncEvents", "BaseEvents", "OnEvents", "SyncEvents"]
