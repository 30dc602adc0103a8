"""Upstream's import path of ``SyncTaskExecutor``."""

from qtasks.executors import SyncTaskExecutor

__all__ = ["SyncTaskExecutor"]
