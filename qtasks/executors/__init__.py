from qtasks.executors.base import BaseTaskExecutor
from qtasks.executors.task_executor import AsyncTaskExecutor

SyncTaskExecutor = AsyncTaskExecutor
"""Upstream's name for the executor of sync apps. Here one executor serves both: every worker
runs an event loop, and plain ``def`` tasks run in its threads."""

__all__ = ["AsyncTaskExecutor", "BaseTaskExecutor", "SyncTaskExecutor"]
