"""Upstream's import path of ``AsyncTaskExecutor``."""

from qtasks.executors.task_executor import AsyncTaskExecutor

__all__ = ["AsyncTaskExecutor"]
