"""``SyncRedisCommandQueue`` / ``AsyncRedisCommandQueue``: fire-and-forget Redis commands (upstream's path).

Upstream wrote task records through these. This engine keeps records in its broker and needs
no Redis; the classes remain for code that used them with a Redis client of its own:
``execute(cmd, *args, **kwargs)`` queues ``client.<cmd>(*args, **kwargs)`` and returns at once;
one background consumer runs the commands in order and logs the ones that fail.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from typing import Any, Optional

log = logging.getLogger("qtasks.contrib.redis")

MAX_PENDING = 100_000
"""Commands waiting at most; past it ``execute`` blocks (sync) or waits (async) for room."""


class SyncRedisCommandQueue:
    def __init__(self, redis: Any, log: Any = None) -> None:
        self.redis = redis
        self.log = log
        self._queue: queue.Queue[Optional[tuple[str, tuple[Any, ...], dict[str, Any]]]] = queue.Queue(MAX_PENDING)
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def execute(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._consume, name="qtasks-redis-commands", daemon=True)
                self._thread.start()
        self._queue.put((cmd, args, kwargs))

    def stop(self, timeout: float = 10.0) -> None:
        """Run what is queued, then end the consumer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _consume(self) -> None:
        while (item := self._queue.get()) is not None:
            cmd, args, kwargs = item
            try:
                getattr(self.redis, cmd)(*args, **kwargs)
            except Exception:
                log.exception("redis command %s failed", cmd)


class AsyncRedisCommandQueue:
    def __init__(self, redis: Any, log: Any = None) -> None:
        self.redis = redis
        self.log = log
        self._queue: Optional[asyncio.Queue[Optional[tuple[str, tuple[Any, ...], dict[str, Any]]]]] = None
        self._consumer: Optional[asyncio.Task[None]] = None

    async def execute(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(MAX_PENDING)
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume(self._queue))
        await self._queue.put((cmd, args, kwargs))

    async def stop(self) -> None:
        """Run what is queued, then end the consumer."""
        if self._queue is not None and self._consumer is not None:
            await self._queue.put(None)
            await self._consumer

    async def _consume(self, commands: asyncio.Queue[Optional[tuple[str, tuple[Any, ...], dict[str, Any]]]]) -> None:
        while (item := await commands.get()) is not None:
            cmd, args, kwargs = item
            try:
                result = getattr(self.redis, cmd)(*args, **kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("redis command %s failed", cmd)


__all__ = ["AsyncRedisCommandQueue", "SyncRedisCommandQueue"]
