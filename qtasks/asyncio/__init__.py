"""``qtasks.asyncio.QueueTasks``: the async app (upstream's import path)."""

from qtasks.app.aio import QueueTasks

__all__ = ["QueueTasks"]
