"""Upstream's import path of the async app."""

from qtasks.app.aio import QueueTasks

__all__ = ["QueueTasks"]
