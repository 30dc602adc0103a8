"""Upstream's import path of the sync app."""

from qtasks.app.sync import QueueTasks

__all__ = ["QueueTasks"]
