"""Upstream's import path of the app core."""

from qtasks.app.core import BaseQueueTasks

__all__ = ["BaseQueueTasks"]
